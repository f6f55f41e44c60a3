"""Paired statistics on hand-computed inputs (semid.evaluate.stats), and the seed-spread audit of the records."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from semid.evaluate import stats


def test_holm_matches_hand_computation():
    # sorted 0.01, 0.03, 0.04 → 3·0.01 = 0.03, 2·0.03 = 0.06, max(0.06, 1·0.04) = 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, None, 0.2]) == [pytest.approx(0.5), None, pytest.approx(0.4)]
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_exact_permutation_p_value():
    # d = (1, 2, 3): of the 8 sign patterns only +++ and --- reach |sum| = 6
    assert stats.paired_permutation([[1, 2, 3]], [[0, 0, 0]]) == pytest.approx(2 / 8)
    # d = (1, -1): sums 0, 0, 2, -2 → all four reach |0|
    assert stats.paired_permutation([[1, 0]], [[0, 1]]) == 1.0
    # seed means are compared: a's seeds average to (1, 2, 3)
    assert stats.paired_permutation([[2, 4, 6], [0, 0, 0]], [[0, 0, 0]]) == pytest.approx(2 / 8)


def test_monte_carlo_permutation_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(1)
    base = rng.random(2000)
    assert stats.paired_permutation([base + 0.05], [base], n_perm=2000) == pytest.approx(1 / 2001)
    noise = stats.paired_permutation([base + rng.normal(0, 0.1, 2000)], [base], n_perm=2000)
    assert noise > 0.01


def test_bootstrap_identical_and_shifted_models():
    u = np.linspace(0, 1, 500)
    same = stats.paired_bootstrap([u], [u], n_boot=200)
    assert same["delta"] == 0 and same["ci95"] == [0.0, 0.0] and same["p_bootstrap"] == 1.0
    up = stats.paired_bootstrap([u + 1], [u], n_boot=200)
    assert up["delta"] == pytest.approx(1) and up["ci95"] == pytest.approx([1, 1]) and up["p_bootstrap"] == 0.0


def test_bootstrap_counts_seed_variance():
    # a's two seeds give 1 and 0 for every user, b gives 0.5: no difference on average, but a
    # replicate that draws seed 0 twice sees +0.5 and one that draws seed 1 twice sees -0.5
    ones, zeros, half = np.ones(300), np.zeros(300), np.full(300, 0.5)
    res = stats.paired_bootstrap([ones, zeros], [half], n_boot=400, seed=3)
    assert res["delta"] == 0
    assert res["ci95"] == pytest.approx([-0.5, 0.5])
    assert res["p_bootstrap"] > 0.5
    # the per-user permutation test sees the seed means only: identical, p = 1
    assert stats.paired_permutation([ones, zeros], [half]) == 1.0


def test_verdict_needs_the_test_and_the_interval():
    assert stats.verdict(0.01, [0.002, 0.02], 0.01) == "better"
    assert stats.verdict(-0.01, [-0.02, -0.001], 0.01) == "worse"
    assert stats.verdict(0.01, [-0.001, 0.02], 0.01) == "no significant difference"
    assert stats.verdict(0.01, [0.002, 0.02], 0.2) == "no significant difference"
    assert stats.verdict(0.01, None, None) == "not tested"


def test_unpaired_shapes_are_refused():
    with pytest.raises(ValueError, match="same users"):
        stats.paired_bootstrap([[1, 2, 3]], [[1, 2]])
    with pytest.raises(ValueError, match="no users"):
        stats.paired_permutation(np.zeros((1, 0)), np.zeros((1, 0)))


def test_permutation_count_leaves_room_for_holm():
    """With 10,000 sign flips the smallest p is 1/10,001; over 600 Holm-corrected tests that is 0.06,
    and no test could ever pass. The flips grow with the tests so the floor stays at alpha / 2."""
    from semid.experiments.table import permutations_for

    assert permutations_for(174, 10_000) == 10_000  # the largest recorded recipe keeps its flips
    assert permutations_for(300, 10_000) == 12_000
    for n in (1, 50, 250, 251, 600, 5_000):
        flips = permutations_for(n, 10_000)
        assert flips >= 10_000 and n / (flips + 1) <= 0.025



def _audit_script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "audit_seed_spread.py"
    spec = importlib.util.spec_from_file_location("audit_seed_spread", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def test_normal_p_keeps_small_p_values():
    """Two-sided normal p: 0.05 at z = 1.96, and far in the tail a tiny positive number, not 0
    (1 - cdf rounds anything below about 1e-16 to 0, which a table would print as p = 0)."""
    assert stats.normal_p(1.959963984540054, 1.0) == pytest.approx(0.05)
    assert stats.normal_p(-1.0, 1.0) == pytest.approx(0.3173105078629141)
    assert 1e-200 < stats.normal_p(30.0, 1.0) < 1e-195  # erfc(30 / sqrt 2) ≈ 4.9e-198
    assert (stats.normal_p(0.0, 0.0), stats.normal_p(0.1, 0.0)) == (1.0, 0.0)
    from semid.experiments import table
    from semid.rank import report
    assert stats.normal_p(80.0, 1.0) == 0.0  # beyond the smallest float: shown as a bound, never as p = 0
    assert (table._p(0.0), report._p(0.0), report._p(0.0, 1000)) == ("<1e-300", "<1e-300", "<0.001")
    assert (table._p(0.01234), report._p(0.01234)) == ("0.01234", "0.012")


def test_the_seed_spread_audit_reads_a_normal_p_from_the_interval():
    """benchmarks/audit_seed_spread.py: a CI whose lower end touches 0 gives p = 0.05."""
    audit = _audit_script()
    z = audit.Z95
    assert audit.seed_aware_p({"delta": 1.0, "ci95": [0.0, 2.0]}) == pytest.approx(0.05)
    assert audit.seed_aware_p({"delta": 3 * z, "ci95": [2 * z, 4 * z]}) < 1e-8
    assert audit.seed_aware_p({"delta": 0.1, "ci95": None}) is None


def test_the_seed_spread_audit_counts_lost_verdicts(tmp_path):
    """A verdict with a wide interval is lost, a narrow one kept, and a pair of rows that scored the
    same model folders is counted apart, not audited."""
    audit = _audit_script()
    rows = [{"row": "a", "model": "m", "per_seed": [{"folder": "A0"}, {"folder": "A1"}]},
            {"row": "b", "model": "m", "per_seed": [{"folder": "B0"}, {"folder": "B1"}]},
            {"row": "a2", "model": "m", "per_seed": [{"folder": "A0"}, {"folder": "A1"}]}]
    tests = [{"model": "a", "baseline": "b", "protocol": "p", "metric": "r", "delta": 0.01, "ci95": [0.001, 0.019],
              "p_holm": 0.01, "verdict": "better"},  # wide interval: lost once the seeds count
             {"model": "a", "baseline": "b", "protocol": "p", "metric": "n", "delta": 0.01, "ci95": [0.008, 0.012],
              "p_holm": 0.01, "verdict": "better"},  # narrow: kept
             {"model": "a2", "baseline": "a", "protocol": "p", "metric": "r", "delta": 0.01, "ci95": [0.0, 0.02],
              "p_holm": 0.01, "verdict": "better"}]  # the same folders: not audited
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.json").write_text(json.dumps({"rows": rows, "tests": tests}))
    got = audit.audit(tmp_path / "x" / "experiment.json")
    assert (got["table"], got["tests"], got["verdicts"], got["lost"], got["same_networks"]) == ("x", 3, 3, 1, 1)
    # a table recorded under the seed-aware rule is listed, not audited again
    (tmp_path / "x" / "experiment.json").write_text(json.dumps({"rows": rows, "tests": [t | {"p_seeds": 0.5} for t in tests]}))
    got = audit.audit(tmp_path / "x" / "experiment.json")
    assert got["seed_aware"] and (got["verdicts"], got["lost"]) == (3, 0)


def _seeded(offsets, users: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """[seeds, users]: the same per-user values, each seed moved by its own offset (a training-seed effect)."""
    return np.stack([users + o + shift for o in offsets])


def test_the_seed_aware_p_counts_how_much_training_seeds_differ():
    """Two rows from one recipe whose seeds happen to land apart: every user moves by the seed-mean
    gap, so the permutation test (networks given) finds it, while the seed-aware p does not, and the
    p that Holm corrects is the larger one."""
    rng = np.random.default_rng(0)
    users = rng.normal(0.5, 0.3, size=3000)
    noise = rng.normal(0, 0.05, size=(3, 3000))
    a = _seeded([0.03, -0.01, 0.02], users) + noise
    b = _seeded([-0.02, 0.01, -0.03], users) + noise[::-1]
    res = stats.compare(a, b, n_boot=400, n_perm=2000)
    assert res["p_permutation"] < 0.001 and res["p_seeds"] > 0.05
    assert res["p_test"] == max(res["p_permutation"], res["p_seeds"])
    assert res["se"] > 0.01  # the seed offsets' spread, not the users' (about 0.001)


def test_paired_seeds_cancel_the_seed_effect_of_one_network_scored_two_ways():
    """The same three networks at two evaluation settings: each seed's offset is in both rows, so
    pairing the seeds leaves only the setting's effect; drawing them apart would not."""
    rng = np.random.default_rng(1)
    users = rng.normal(0.5, 0.3, size=3000)
    offsets = [0.04, -0.03, 0.01]
    a = _seeded(offsets, users, shift=0.003) + rng.normal(0, 0.01, size=(3, 3000))
    b = _seeded(offsets, users)
    paired = stats.compare(a, b, n_boot=400, n_perm=2000, paired_seeds=True)
    apart = stats.compare(a, b, n_boot=400, n_perm=2000)
    assert paired["p_seeds"] < 1e-6 and apart["p_seeds"] > 0.5
    assert paired["p_test"] < 0.001 and paired["ci95"][0] > 0
    with pytest.raises(ValueError, match="as many seeds"):
        stats.paired_bootstrap(a, b[:2], paired_seeds=True)
    assert stats.compare(a, b, n_boot=0, n_perm=200)["p_test"] == stats.compare(a, b, n_boot=0, n_perm=200)["p_permutation"]
