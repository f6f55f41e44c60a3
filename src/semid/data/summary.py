"""The ``stats.json`` record of the prepare stage, one definition for both engines
(:mod:`semid.data.prepare` holds the table, :mod:`semid.data.streaming` counts as it goes)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import polars as pl

TEXT_FIELDS = ("title", "brand", "categories", "price", "description", "text")


def filled(schema: pl.Schema) -> list[pl.Expr]:
    """Per item field, how many items have it (a non-empty string or list): one row of sums."""
    return [(pl.col(c).is_not_null() & (pl.col(c).list.len() > 0 if schema[c] == pl.List(pl.String)
                                        else pl.col(c) != "")).sum().alias(f"items_with_{c}")
            for c in TEXT_FIELDS]


def length_histogram(lengths: pl.Series | np.ndarray) -> np.ndarray:
    """Users per sequence length (index = length), the form :func:`record` takes: one entry per
    length, not per user, so a streaming engine can add ranges of users up."""
    return np.bincount(np.asarray(lengths, dtype=np.int64))


def _quantile_nearest(cum: np.ndarray, p: float) -> int:
    """``Series.quantile(p, "nearest")`` of the lengths whose histogram sums to ``cum``: the value
    at sorted index floor(p (n - 1) + 1/2)."""
    k = math.floor(p * (int(cum[-1]) - 1) + 0.5)
    return int(np.searchsorted(cum, k, side="right"))


def record(source, *, raw_events: int, n_events: int, n_items: int, lengths: np.ndarray,
           time_range: list[int] | None, timestamps_missing: int, dropped: Counter[str],
           items_filled: dict[str, int], text_stats: dict[str, Any], split_info: dict[str, Any],
           rows: dict[str, int], cold: dict[str, int]) -> dict[str, Any]:
    """``lengths``: users per sequence length (:func:`length_histogram`); ``rows``: train/val/test
    rows; ``cold``: val/test cold rows and the distinct cold test targets (``test_items``)."""
    cum = np.cumsum(lengths)
    n_users = int(cum[-1]) if len(cum) else 0
    if n_users == 0:
        raise ValueError("no users to summarise")
    q = {f"p{int(p * 100)}": float(_quantile_nearest(cum, p)) for p in (0.25, 0.5, 0.75, 0.9, 0.99)}
    used = np.flatnonzero(lengths)
    total = int((np.arange(len(lengths)) * lengths).sum())
    return {
        "users": int(n_users),
        "items": int(n_items),
        "interactions": int(n_events),
        "density": round(n_events / max(1, n_users * n_items), 6),
        "has_timestamps": timestamps_missing == 0,
        "time_range": time_range,
        "sequence_length": {"min": int(used[0]), "mean": round(total / n_users, 3), **q, "max": int(used[-1])},
        "source_events": int(raw_events),
        "dropped_rows": {k: int(v) for k, v in dropped.items()},
        "skipped_lines": {k: int(v) for k, v in source.skipped.items()},
        "item_text": {**{k: int(v) for k, v in items_filled.items()}, **text_stats},
        "reader_notes": source.notes,
        "split": {**split_info, **{f"{n}_rows": int(rows[n]) for n in ("train", "val", "test")},
                  "val_cold_rows": int(cold["val"]), "test_cold_rows": int(cold["test"]),
                  "test_cold_items": int(cold["test_items"])},
    }
