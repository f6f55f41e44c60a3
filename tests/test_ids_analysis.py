"""Closed-form checks of the Semantic ID quality figures (semid.ids.analysis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semid.ids import analysis, report
from semid.ids.dedup import collision_stats


def test_reconstruction_identity_and_opposite():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    same = analysis.reconstruction(x, x)
    assert same["mean_cosine"] == pytest.approx(1.0)
    assert same["mse"] == 0.0
    opposite = analysis.reconstruction(x, -x)
    assert opposite["mean_cosine"] == pytest.approx(-1.0)
    # (2x)^2 per element: (36 + 64 + 4 + 0) / 4
    assert opposite["mse"] == pytest.approx(26.0)
    assert opposite["sq_error_per_item"] == pytest.approx(52.0)


def test_level_usage_by_hand():
    codes = np.array([[0, 3], [0, 3], [1, 3], [1, 3]])
    lv1, lv2 = analysis.level_usage(codes, 4)
    assert (lv1["used"], lv1["used_share"]) == (2, 0.5)
    assert lv1["entropy_bits"] == pytest.approx(1.0)
    assert lv1["perplexity"] == pytest.approx(2.0)
    assert lv1["max_entropy_bits"] == pytest.approx(2.0)
    assert lv1["counts"] == [2, 2, 0, 0]
    assert lv2["entropy_bits"] == pytest.approx(0.0)
    assert lv2["perplexity"] == pytest.approx(1.0)
    assert lv2["largest_code_share"] == 1.0


def test_uniform_usage_has_full_perplexity():
    codes = np.arange(256).reshape(-1, 1)
    (lv,) = analysis.level_usage(codes, 256)
    assert lv["used_share"] == 1.0
    assert lv["perplexity"] == pytest.approx(256.0)
    assert lv["entropy_bits"] == pytest.approx(math.log2(256))


def test_collisions_by_hand():
    codes = np.array([[1, 2], [1, 2], [1, 2], [0, 0], [5, 5], [5, 5]])
    s = collision_stats(codes)
    assert s["unique_ids"] == 3
    assert s["items_in_collision"] == 5
    assert s["collision_share"] == pytest.approx(5 / 6)
    assert s["largest_group"] == 3
    assert s["groups_with_collision"] == 2


def test_pair_cosine_by_hand():
    # group 0: two identical vectors (cos 1); group 1: orthogonal pair (cos 0)
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    mean, pairs = analysis.pair_cosine(x, np.array([0, 0, 1, 1]))
    assert pairs == 2
    assert mean == pytest.approx(0.5)
    all_mean, all_pairs = analysis.pair_cosine(x, np.zeros(4, dtype=int))
    assert all_pairs == 6
    # pairs: (0,1)=1 (0,2)=0 (0,3)=1 (1,2)=0 (1,3)=1 (2,3)=0
    assert all_mean == pytest.approx(0.5)


def test_pair_cosine_without_pairs_is_nan():
    mean, pairs = analysis.pair_cosine(np.eye(3), np.arange(3))
    assert pairs == 0 and math.isnan(mean)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(1, 6), st.integers(0, 10_000))
def test_pair_cosine_agrees_with_reference(n, d, n_groups, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 1e-3
    groups = rng.integers(0, n_groups, n)
    groups = np.unique(groups, return_inverse=True)[1]
    fast, _ = analysis.pair_cosine(x, groups)
    slow = analysis.pair_cosine_reference(x, groups)
    if math.isnan(slow):
        assert math.isnan(fast)
    else:
        assert fast == pytest.approx(slow, abs=1e-9)


def test_prefix_coherence_perfect_hierarchy():
    # codes follow the vectors exactly: items sharing the full prefix are identical
    x = np.array([[1, 0, 0], [1, 0, 0], [1, 0.2, 0], [0, 0, 1], [0, 0, 1]], dtype=float)
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 0], [1, 0]])
    coh = analysis.prefix_coherence(x, codes)
    l1, l2 = coh["prefix"]
    assert l2["mean_cosine"] == pytest.approx(1.0)
    assert l2["pairs"] == 2
    assert l1["pairs"] == 4
    c = 1 / math.sqrt(1.04)
    assert l1["mean_cosine"] == pytest.approx((1 + 2 * c + 1) / 4)
    assert coh["random_pairs"] < l1["mean_cosine"]


def test_purity_by_hand():
    groups = np.array([0, 0, 0, 1, 1])
    labels = np.array(["a", "a", "b", "c", "c"])
    assert analysis.purity(groups, labels) == pytest.approx(4 / 5)
    cats = [["A", "x"], ["A", "y"], ["B", "z"], None]
    res = analysis.category_purity(np.array([[0], [0], [1], [1]]), cats)
    assert res["items_with_categories"] == 3
    row = res["prefix"][0]
    assert row["top_purity"] == pytest.approx(1.0)
    assert row["leaf_purity"] == pytest.approx(2 / 3)
    assert analysis.category_purity(np.array([[0], [1]]), [None, []]) is None


def test_code_meanings_finds_distinctive_words():
    titles = ["red lipstick matte", "red lipstick gloss", "blue shampoo bottle", "blue shampoo fresh"]
    cats = [["Makeup"], ["Makeup"], ["Hair"], ["Hair"]]
    x = np.array([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]])
    means = analysis.code_meanings(x, np.array([3, 3, 7, 7]), titles, cats, top_words=2)
    by_code = {m["code"]: m for m in means}
    assert set(by_code[3]["words"]) == {"red", "lipstick"}
    assert set(by_code[7]["words"]) == {"blue", "shampoo"}
    assert by_code[7]["categories"][0] == {"category": "Hair", "share": 1.0}
    assert len(by_code[3]["examples"]) == 2


def test_summary_and_markdown_without_reconstruction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    codes = np.c_[rng.integers(0, 4, (50, 2)), np.zeros(50, dtype=int)]
    rep = analysis.summarize(x, codes, 4, None)
    assert rep["reconstruction"] is None
    assert len(rep["usage"]) == 2 and len(rep["coherence"]["prefix"]) == 2
    text = report.markdown(rep, "random-2x4")
    assert "Code usage" in text and "Semantic coherence" in text and "Reconstruction" not in text


def test_next_item_agreement_by_hand():
    # level 1: items 0, 1 have code 0 and items 2, 3 code 1; level 2: only 2 and 3 share both codes
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 0]])
    prev, nxt = np.array([0, 2, 0, 1]), np.array([1, 3, 2, 0])
    rows = analysis.next_item_agreement(codes, prev, nxt)
    # level 1: pairs (0,1) (2,3) agree, (0,2) does not, (1,0) agrees → 3/4; prev groups [0,1,0,0], next [0,1,1,0]
    # chance = (3·2 + 1·2) / 16 = 0.5
    assert rows[0] == {"prefix_len": 1, "share": 0.75, "expected": 0.5, "lift": 1.5}
    # level 2: groups 00 → a, 01 → b, 10 → c: only (2,3) agrees → 1/4; prev [a,c,a,b], next [b,c,c,a]: (2·1 + 1·2 + 1·1) / 16
    assert rows[1]["share"] == 0.25 and rows[1]["expected"] == pytest.approx(5 / 16) and rows[1]["lift"] == pytest.approx(0.8)
    assert analysis.next_item_agreement(codes, np.array([], dtype=int), np.array([], dtype=int)) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 3), st.integers(1, 4), st.integers(1, 40), st.integers(0, 10_000))
def test_next_item_agreement_agrees_with_reference(n, levels, size, pairs, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, size, (n, levels))
    prev, nxt = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    fast = analysis.next_item_agreement(codes, prev, nxt)
    slow = analysis.next_item_agreement_reference(codes, prev, nxt)
    for f, s in zip(fast, slow, strict=True):
        assert f["share"] == pytest.approx(s["share"]) and f["expected"] == pytest.approx(s["expected"])
        assert f["lift"] == pytest.approx(s["lift"], nan_ok=True)


def test_transitions_are_consecutive_pairs_of_whole_sequences():
    prev, nxt = analysis.transitions([[4, 5], [], [7]], [6, 1, 8])
    assert prev.tolist() == [4, 5, 7] and nxt.tolist() == [5, 6, 8]


def test_next_item_agreement_in_the_markdown():
    rng = np.random.default_rng(0)
    codes = np.c_[rng.integers(0, 4, (50, 2)), np.zeros(50, dtype=int)]
    rep = analysis.summarize(rng.normal(size=(50, 8)), codes, 4, None)
    pairs = rng.integers(0, 50, (2, 30))
    rep["next_item"] = {s: {"pairs": 30, "prefix": analysis.next_item_agreement(codes[:, :2], *pairs)} for s in ("train", "val")}
    text = report.markdown(rep, "random-2x4")
    assert "## Next-item agreement" in text and "| train share | train chance | train lift | val share |" in text
    section = text.split("## Next-item agreement")[1]
    assert section.count("\n| 1 | ") == 1 and section.count("\n| 2 | ") == 1 and "Pairs: train 30, val 30." in section
