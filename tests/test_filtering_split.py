"""Closed-form checks of ordering, deduplication, k-core and the three split protocols."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from semid.core.errors import DataError
from semid.data import filtering, split


def events(rows):
    return pl.DataFrame(rows, schema={"user": pl.String, "item": pl.String, "timestamp": pl.Int64}, orient="row")


def test_order_is_stable_by_time_with_ties_in_file_order():
    df = events([("u", "c", 3), ("v", "x", 1), ("u", "a", 1), ("u", "b", 1), ("u", "d", None)])
    out = filtering.order_events(df)
    assert out["item"].to_list() == ["a", "b", "c", "d", "x"]  # users in first-seen order; nulls last


def test_dedup_keeps_earliest_and_counts():
    dropped = Counter()
    df = filtering.order_events(events([("u", "a", 5), ("u", "a", 1), ("u", "b", 2)]))
    out = filtering.dedup(df, dropped)
    assert out.select("item", "timestamp").rows() == [("a", 1), ("b", 2)]
    assert dropped["repeated (user, item) event"] == 1


def test_k_core_is_iterative():
    # u3 has 2 events → dropped; then item c falls to 1 event → dropped; then u2 falls to 1 → dropped.
    rows = [("u1", "a", 0), ("u1", "b", 0), ("u2", "a", 0), ("u2", "c", 0), ("u3", "c", 0), ("u3", "b", 0),
            ("u4", "a", 0), ("u4", "b", 0)]
    dropped = Counter()
    out = filtering.k_core(events(rows).filter(pl.col("user") != "u3").vstack(events([("u3", "c", 0)])), 2, 2, dropped)
    users = out.group_by("user").len()
    items = out.group_by("item").len()
    assert users["len"].min() >= 2 and items["len"].min() >= 2
    assert sorted(out["user"].unique()) == ["u1", "u4"]
    assert sum(dropped.values()) == 8 - 1 - 4


def inter(seqs, times=None):
    rows = []
    for u, seq in enumerate(seqs):
        for p, i in enumerate(seq):
            rows.append((u, i, None if times is None else times[u][p]))
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "item_id": pl.Int32, "timestamp": pl.Int64}, orient="row")


def test_leave_one_out_rows():
    train, val, test, info = split.leave_one_out(inter([[0, 1, 2, 3, 4], [5, 6, 7], [8, 9]]))
    assert test.select("user_id", "history", "target").rows() == [(0, [0, 1, 2, 3], 4), (1, [5, 6], 7)]
    assert val.select("history", "target").rows() == [([0, 1, 2], 3), ([5], 6)]
    assert train.select("user_id", "history", "target").rows() == [(0, [0, 1], 2), (1, [], 5), (2, [8], 9)]
    assert info["users_too_short_for_evaluation"] == 1


def test_temporal_split_and_cold_items():
    seqs = [[0, 1, 2, 3], [0, 1, 4]]
    times = [[10, 20, 30, 40], [15, 25, 45]]
    train, val, test, info = split.temporal(inter(seqs, times), test_share=0.1, val_share=0.1, cut=40)
    assert test.select("user_id", "history", "target").rows() == [(0, [0, 1, 2], 3), (1, [0, 1], 4)]
    assert info["test_cut"] == 40
    test = split.mark_cold(test, train)
    assert all(t < 40 for t in train["timestamp"])
    seen = set(train["history"].explode().drop_nulls()) | set(train["target"])
    assert test["cold"].to_list() == [t not in seen for t in test["target"]]


def test_temporal_without_timestamps_is_a_clear_error():
    with pytest.raises(DataError, match="needs timestamps"):
        split.temporal(inter([[0, 1, 2]]), 0.1, 0.1, None)


def test_hold_out_items_removes_them_from_training_only():
    train, val, test, _ = split.leave_one_out(inter([list(range(i, i + 8)) for i in range(0, 40, 4)]))
    held_train, info = split.hold_out_items(train, 48, 0.25, seed=1)
    assert info["held_out_items"] == 12
    test = split.mark_cold(test, held_train)
    seen = set(held_train["history"].explode().drop_nulls()) | set(held_train["target"])
    assert len(seen) + info["held_out_items"] <= 48
    assert test["cold"].sum() > 0
    assert test["cold"].to_list() == [t not in seen for t in test["target"]]
