"""The ranking study's statistics on hand-computed inputs: paired(), significance(), claim_verdict(),
claims(), collision_effect(), summarize() and matrices() of semid.rank.report.

Inputs are built from one per-event vector ``U`` (12 events, so the sign-flip test is exact:
2^12 sign patterns) plus constant shifts, so every Δ, p-value and verdict is known in advance:
a constant per-event difference d ≠ 0 reaches |Σ| only under the all-plus and all-minus patterns,
p = 2 / 4096 = 1 / 2048; a zero difference gives p = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from semid.rank import report

U = np.linspace(0.3, 0.7, 12)  # per-list AUC of 12 test events
P_MIN = 2 / 2 ** 12  # exact permutation p of a constant non-zero per-event difference


def _same(shift: float, seeds: int = 2) -> tuple[list[int], np.ndarray]:
    """Every seed scores U + shift."""
    return list(range(seeds)), np.tile(U + shift, (seeds, 1))


def _seeds(*shifts: float) -> tuple[list[int], np.ndarray]:
    """Seed i scores U + shifts[i]."""
    return list(range(len(shifts))), np.stack([U + s for s in shifts])


def _t_p_df1(t: float) -> float:
    """Two-sided p of Student's t with 1 degree of freedom (a Cauchy variable): 1 − (2/π)·atan|t|."""
    return 1 - 2 / math.pi * math.atan(abs(t))


# ---------------------------------------------------------------- paired()

def test_paired_constant_shift():
    (_, a), (_, b) = _same(0.1), _same(0.0)
    c = report.paired(a, b, n_boot=300, n_perm=100)
    assert c["delta"] == pytest.approx(0.1)
    assert c["ci95"] == pytest.approx([0.1, 0.1])  # every replicate sees the same +0.1
    assert c["p_bootstrap"] == 0.0
    assert c["p_permutation"] == pytest.approx(P_MIN)
    assert c["p_ttest_seeds"] is None  # both seeds differ by exactly 0.1: no variance
    assert c["delta_by_seed"] == pytest.approx([0.1, 0.1])
    assert c["n_events"] == 12 and c["n_seeds"] == [2, 2]


def test_paired_counts_seed_variance():
    # a's seeds score U + 0.3 and U − 0.1, b scores U: Δ = 0.1 on average, but a replicate that draws
    # a's first seed twice sees +0.3, its second twice −0.1 (each with probability 1/4)
    (sa, a), (sb, b) = _seeds(0.3, -0.1), _same(0.0)
    c = report.paired(a, b, sa, sb, n_boot=1000, n_perm=100)
    assert c["delta"] == pytest.approx(0.1)
    assert c["ci95"] == pytest.approx([-0.1, 0.3])
    assert c["p_bootstrap"] == pytest.approx(0.5, abs=0.1)  # P(replicate <= 0) = 1/4, two-sided
    assert c["p_permutation"] == pytest.approx(P_MIN)  # the seed means differ by +0.1 on every event
    # seed-level t-test: d = (0.3, −0.1), mean 0.1, sd 0.2828, se 0.2 → t = 0.5 with 1 df
    assert c["p_ttest_seeds"] == pytest.approx(_t_p_df1(0.5))
    assert c["delta_by_seed"] == pytest.approx([0.3, -0.1])


def test_paired_t_test_pairs_by_seed_id_not_position():
    a = np.stack([U + 0.9, U + 0.7])  # seeds 1, 0
    b = np.stack([U + 0.6, U + 0.8])  # seeds 0, 1
    c = report.paired(a, b, [1, 0], [0, 1], n_boot=0, n_perm=10)
    assert c["delta_by_seed"] == pytest.approx([0.1, 0.1])  # by position it would be (0.3, −0.1)
    assert c["p_ttest_seeds"] is None
    assert c["ci95"] is None and c["p_bootstrap"] is None  # no bootstrap asked for
    d = report.paired(np.stack([U + 0.2, U]), np.stack([U, U]), [0, 1], [1, 2], n_boot=0, n_perm=10)
    assert d["delta_by_seed"] == pytest.approx([0.0]) and d["p_ttest_seeds"] is None  # one common seed


def test_paired_seed_t_test_value():
    # d by seed = (0.1, 0.3): mean 0.2, se 0.1, t = 2, 1 df
    (sa, a), (sb, b) = _seeds(0.1, 0.3), _same(0.0)
    c = report.paired(a, b, sa, sb, n_boot=0, n_perm=10)
    assert c["p_ttest_seeds"] == pytest.approx(_t_p_df1(2.0))
    assert c["delta"] == pytest.approx(0.2)


def test_paired_no_events_is_not_tested():
    assert report.paired(np.zeros((2, 0)), np.zeros((2, 0))) is None


# ---------------------------------------------------------------- significance() and claim_verdict()

@pytest.mark.parametrize(("c", "expected"), [
    ({"delta": 0.1, "ci95": [0.05, 0.15], "p_holm": 0.01}, "better"),
    ({"delta": 0.1, "ci95": [0.05, 0.15], "p_holm": 0.05}, "no significant difference"),  # p must be < α
    ({"delta": 0.1, "ci95": [-0.01, 0.15], "p_holm": 0.001}, "no significant difference"),  # CI covers 0
    ({"delta": -0.1, "ci95": [-0.15, -0.05], "p_holm": 0.001}, "worse"),
    ({"delta": -0.1, "ci95": [-0.15, -0.05], "p_holm": 0.2}, "no significant difference"),
    ({"delta": 0.1, "ci95": [0.05, 0.15], "p_holm": None}, "not tested"),
    ({"delta": 0.1, "ci95": None, "p_holm": 0.001}, "not tested"),
    (None, "not tested"),
])
def test_significance(c, expected):
    assert report.significance(c) == expected


def test_significance_uses_alpha():
    c = {"delta": 0.1, "ci95": [0.05, 0.15], "p_holm": 0.03}
    assert report.significance(c, alpha=0.05) == "better"
    assert report.significance(c, alpha=0.01) == "no significant difference"


@pytest.mark.parametrize(("verdicts", "expected"), [
    (["better", "better"], "supported"),
    (["better", "no significant difference"], "partly supported"),
    (["better", "not tested"], "partly supported"),
    (["no significant difference", "no significant difference"], "not supported"),
    (["better", "worse"], "contradicted"),
    (["no significant difference", "worse"], "contradicted"),
    (["not tested"], "not tested"),
    ([], "not tested"),
])
def test_claim_verdict(verdicts, expected):
    assert report.claim_verdict(verdicts) == expected


# ---------------------------------------------------------------- claims()

def _grid() -> report.Mats:
    """One table size (hash, bigram, prefix, spm at T = 64; unigram at 48), with history, plus hash,
    unigram and bigram without history: 14 claim comparisons (4 + 2 + 2 context + 6)."""
    h, n = True, False
    return {
        # claim 1, cold: unigram +0.2, prefix +0.15, spm +0.05 over hash; bigram +0.1 on average but
        # its two seeds give +0.3 and −0.1
        ("hash", 64, h, "cold"): _same(0.0), ("unigram", 48, h, "cold"): _same(0.2),
        ("bigram", 64, h, "cold"): _seeds(0.3, -0.1), ("prefix", 64, h, "cold"): _same(0.15),
        ("spm", 64, h, "cold"): _same(0.05),
        # claim 2, all, with history: unigram and bigram +0.1; claim 3, all: spm and prefix +0.12
        ("hash", 64, h, "all"): _same(0.0), ("unigram", 48, h, "all"): _same(0.1),
        ("bigram", 64, h, "all"): _same(0.1), ("prefix", 64, h, "all"): _same(0.12),
        ("spm", 64, h, "all"): _same(0.12),
        # context, without history: both below hash
        ("hash", 64, n, "all"): _same(0.0), ("unigram", 48, n, "all"): _same(-0.05),
        ("bigram", 64, n, "all"): _same(-0.02),
    }


def test_claims_on_a_hand_computed_grid():
    out = report.claims(report.Comparisons(_grid(), n_boot=1000, n_perm=100), alpha=0.05)
    assert [c["claim"] for c in out] == list(report.CLAIMS)
    # 11 comparisons at p = 1/2048 (identical seeds: the seed-aware p is 0, so the permutation p is the
    # larger), bigram's two cold ones at their large seed-aware p, one at p = 1: Holm gives each of the 11 14/2048
    holm = 14 * P_MIN

    c1 = out[0]
    rows = {(e["a"], e["b"]): e for e in c1["comparisons"]}
    assert list(rows) == [("bigram@64", "hash@64"), ("prefix@64", "hash@64"), ("spm@64", "hash@64"),
                          ("unigram@48", "hash@64")]
    assert [rows[k]["delta"] for k in rows] == pytest.approx([0.1, 0.15, 0.05, 0.2])
    assert all(e["slice"] == "cold" and e["role"] == "test" and e["history"] for e in c1["comparisons"])
    assert all(e["p_permutation"] == pytest.approx(P_MIN) for e in c1["comparisons"])
    assert [rows[k]["p_holm"] for k in list(rows)[1:]] == pytest.approx([holm] * 3)
    bigram = rows[("bigram@64", "hash@64")]
    assert bigram["ci95"] == pytest.approx([-0.1, 0.3])  # seed variance: not significant
    assert bigram["p_seeds"] > 0.3 and bigram["p_test"] == bigram["p_seeds"] and bigram["p_holm"] >= bigram["p_seeds"]
    assert bigram["verdict"] == "no significant difference"
    assert [rows[k]["verdict"] for k in list(rows)[1:]] == ["better"] * 3
    assert c1["verdict"] == "partly supported"
    assert c1["counts"] == {"better": 3, "worse": 0, "no significant difference": 1, "not tested": 0}
    assert c1["figures"].startswith("3/4 comparisons significantly better, 0 significantly worse")
    assert c1["seed_t_test"] == {"decided": 3, "seed_t_below_alpha": 0}  # identical seeds: no t-test

    c2 = out[1]
    tests = [e for e in c2["comparisons"] if e["role"] == "test"]
    context = [e for e in c2["comparisons"] if e["role"] == "context"]
    assert [(e["a"], e["delta"]) for e in tests] == [("bigram@64", pytest.approx(0.1)), ("unigram@48", pytest.approx(0.1))]
    assert [e["verdict"] for e in tests] == ["better", "better"]
    assert [(e["a"], e["history"], e["verdict"]) for e in context] == [("bigram@64", False, "worse"),
                                                                        ("unigram@48", False, "worse")]
    assert [e["delta"] for e in context] == pytest.approx([-0.02, -0.05])
    assert c2["verdict"] == "supported"  # the context comparisons (worse) do not enter the verdict
    assert "Context (not in the verdict)" in c2["figures"]

    c3 = out[2]
    got = {(e["b"], e["slice"]): (e["delta"], e["verdict"]) for e in c3["comparisons"]}
    assert all(e["a"] == "spm@64" for e in c3["comparisons"])
    expected = {("bigram@64", "all"): (0.02, "better"), ("prefix@64", "all"): (0.0, "no significant difference"),
                ("unigram@48", "all"): (0.02, "better"),
                ("bigram@64", "cold"): (-0.05, "no significant difference"),  # bigram's seed variance again
                ("prefix@64", "cold"): (-0.1, "worse"), ("unigram@48", "cold"): (-0.15, "worse")}
    assert set(got) == set(expected)
    for k, (delta, verdict) in expected.items():
        assert got[k][0] == pytest.approx(delta, abs=1e-12), k
        assert got[k][1] == verdict, k
    zero = next(e for e in c3["comparisons"] if e["b"] == "prefix@64" and e["slice"] == "all")
    assert zero["p_permutation"] == 1.0 and zero["p_holm"] == 1.0
    assert c3["verdict"] == "contradicted"
    assert c3["counts"] == {"better": 2, "worse": 2, "no significant difference": 2, "not tested": 0}


def test_claims_count_verdicts_the_seed_t_test_backs():
    # unigram's 3 seeds give +0.19, +0.20, +0.21: t = 0.2 / (0.01 / √3) = 34.6 with 2 df, p ≈ 0.0008;
    # bigram's 2 seeds give +0.1 and +0.3: t = 2 with 1 df, p = 0.295. Both CIs exclude 0 (better).
    mats = {("hash", 64, True, "cold"): _same(0.0, seeds=3), ("unigram", 48, True, "cold"): _seeds(0.19, 0.2, 0.21),
            ("bigram", 64, True, "cold"): _seeds(0.1, 0.3)}
    c1 = report.claims(report.Comparisons(mats, n_boot=1000, n_perm=10))[0]
    rows = {e["a"]: e for e in c1["comparisons"]}
    assert rows["bigram@64"]["p_ttest_seeds"] == pytest.approx(_t_p_df1(2.0))
    assert rows["bigram@64"]["ci95"] == pytest.approx([0.1, 0.3])
    assert rows["unigram@48"]["p_ttest_seeds"] < 0.001
    assert [rows[k]["verdict"] for k in ("bigram@64", "unigram@48")] == ["better", "better"]
    # unigram's seeds agree: its p is the permutation floor; bigram's seed spread gives it a larger
    # seed-aware p (about 0.004), which Holm over 2 keeps as it is
    assert rows["unigram@48"]["p_holm"] == pytest.approx(2 * P_MIN)
    assert 2 * P_MIN < rows["bigram@64"]["p_seeds"] == rows["bigram@64"]["p_holm"] < 0.05
    assert c1["verdict"] == "supported"
    assert c1["seed_t_test"] == {"decided": 2, "seed_t_below_alpha": 1}
    assert "1 of these 2 also have a seed-level t-test p < 0.05" in c1["figures"]


def test_holm_family_size_decides_significance():
    # the same +0.1 shift that is significant in a family of one (p = 1/2048) is not after Holm over
    # 120 comparisons (120/2048 = 0.059 > 0.05)
    h = True
    mats: report.Mats = {("hash", t, h, "cold"): _same(0.0) for t in range(16, 16 + 120)}
    mats[("unigram", 48, h, "cold")] = _same(0.1)  # unigram is compared with every hash size
    out = report.claims(report.Comparisons(mats, n_boot=200, n_perm=10))
    c1 = out[0]
    assert len(c1["comparisons"]) == 120
    assert all(e["p_holm"] == pytest.approx(120 * P_MIN) for e in c1["comparisons"])
    assert c1["verdict"] == "not supported"
    assert out[1]["verdict"] == "not tested" and out[2]["verdict"] == "not tested"  # no "all" slice, no spm


def test_claims_without_history_runs_do_not_test_claim_2():
    mats = {k: v for k, v in _grid().items() if not k[2]}
    out = report.claims(report.Comparisons(mats, n_boot=100, n_perm=10))
    assert out[1]["verdict"] == "not tested" and out[1]["comparisons"] == []
    assert out[0]["history"] is False  # claim 1 falls back to the no-history grid (no cold slice here)
    assert out[0]["verdict"] == "not tested"


# ---------------------------------------------------------------- collision_effect(), summarize(), matrices()

def test_collision_effect():
    mats = {("unigram", 48, True, "all"): _same(0.1), ("unigram_dedup", 48, True, "all"): _same(0.15),
            ("unigram", 48, True, "cold"): _same(0.2), ("unigram_dedup", 48, True, "cold"): _same(0.2)}
    out = report.collision_effect(report.Comparisons(mats, n_boot=200, n_perm=10))
    rows = {e["slice"]: e for e in out["comparisons"]}
    assert rows["all"]["delta"] == pytest.approx(0.05) and rows["all"]["verdict"] == "better"
    assert rows["all"]["p_holm"] == pytest.approx(2 * P_MIN)  # family: the two tested slices
    assert rows["cold"]["delta"] == 0 and rows["cold"]["verdict"] == "no significant difference"
    assert rows["tail"]["verdict"] == "not tested"  # no tail slice given
    assert report.collision_effect(report.Comparisons({("unigram", 48, True, "all"): _same(0.1)})) is None


def _records(rep: str, size: int, auc: float, auc_user: float) -> list[dict]:
    return [{"representation": rep, "table_size": size, "history": True, "slice": "all", "rows": size, "params": 8 * size,
             "n_events": 12, "seed": s, "auc": auc, "auc_user": auc_user, "ndcg@10": 0.0, "recall@10": 0.0}
            for s in (0, 1)]


def test_summarize_reports_the_tested_quantity():
    # pooled AUC says +0.4 for unigram, the per-list AUC +0.1: Δ and test are on the per-list AUC
    mats = {("hash", 16, True, "all"): _same(0.0), ("hash", 64, True, "all"): _same(0.05),
            ("bigram", 16, True, "all"): _same(0.2), ("unigram", 48, True, "all"): _same(0.1),
            ("unigram_dedup", 48, True, "all"): _same(0.12)}
    records = (_records("hash", 16, 0.5, U.mean()) + _records("hash", 64, 0.5, U.mean() + 0.05)
               + _records("bigram", 16, 0.7, U.mean() + 0.2) + _records("unigram", 48, 0.9, U.mean() + 0.1)
               + _records("unigram_dedup", 48, 0.9, U.mean() + 0.12))
    summary = report.summarize(records, report.Comparisons(mats, n_boot=100, n_perm=10))
    rows = {s["representation"]: s for s in summary}
    assert rows["hash"]["vs_hash"] == []
    assert [(c["hash_table_size"], c["delta"]) for c in rows["unigram"]["vs_hash"]] == \
        [(16, pytest.approx(0.1)), (64, pytest.approx(0.05))]  # one-size: against every hash size
    assert [(c["hash_table_size"], c["delta"]) for c in rows["bigram"]["vs_hash"]] == [(16, pytest.approx(0.2))]
    assert rows["unigram_dedup"]["vs_unigram"]["delta"] == pytest.approx(0.02)
    assert "vs_unigram" not in rows["unigram"]
    assert rows["unigram"]["auc"] == pytest.approx(0.9) and rows["unigram"]["auc_user"] == pytest.approx(U.mean() + 0.1)
    table = report.table_rows(summary)
    uni = next(r for r in table if r["representation"] == "unigram")
    assert uni["vs_hash_T"] == 64 and uni["delta_auc_user"] == pytest.approx(0.05)


def test_hash_baselines():
    keys = {("hash", 16, True), ("hash", 64, True), ("hash", 256, False)}
    assert report.hash_baselines(keys, "bigram", 16, True) == [16]
    assert report.hash_baselines(keys, "bigram", 32, True) == [16, 64]  # no hash at 32: every size
    assert report.hash_baselines(keys, "unigram", 48, True) == [16, 64]
    assert report.hash_baselines(keys, "unigram_dedup", 16, True) == [16, 64]  # one-size even at a hash size
    assert report.hash_baselines(keys, "spm", 256, False) == [256]


def test_matrices_stack_seeds_in_order_and_slice_events():
    events = {("hash", 16, True, 2): np.array([0.2, 0.4, 0.6]), ("hash", 16, True, 0): np.array([0.0, 0.5, 1.0])}
    slices = {"all": np.array([True, True, True]), "cold": np.array([False, True, True])}
    m = report.matrices(events, slices)
    seeds, all_ = m[("hash", 16, True, "all")]
    assert seeds == [0, 2] and all_.tolist() == [[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]]
    assert m[("hash", 16, True, "cold")][1].tolist() == [[0.5, 1.0], [0.4, 0.6]]
