"""The ``stats.json`` record of the prepare stage, one definition for both engines
(:mod:`semid.data.prepare` holds the table, :mod:`semid.data.streaming` counts as it goes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

TEXT_FIELDS = ("title", "brand", "categories", "price", "description", "text")


def filled(schema: pl.Schema) -> list[pl.Expr]:
    """Per item field, how many items have it (a non-empty string or list): one row of sums."""
    return [(pl.col(c).is_not_null() & (pl.col(c).list.len() > 0 if schema[c] == pl.List(pl.String)
                                        else pl.col(c) != "")).sum().alias(f"items_with_{c}")
            for c in TEXT_FIELDS]


def record(source, *, raw_events: int, n_events: int, n_items: int, lengths: pl.Series,
           time_range: list[int] | None, timestamps_missing: int, dropped: Counter[str],
           items_filled: dict[str, int], text_stats: dict[str, Any], split_info: dict[str, Any],
           rows: dict[str, int], cold: dict[str, int]) -> dict[str, Any]:
    """``lengths``: events per user; ``rows``: train/val/test rows; ``cold``: val/test cold rows
    and the distinct cold test targets (``test_items``)."""
    n_users = lengths.len()
    q = {f"p{int(p * 100)}": float(lengths.quantile(p, "nearest")) for p in (0.25, 0.5, 0.75, 0.9, 0.99)}
    return {
        "users": int(n_users),
        "items": int(n_items),
        "interactions": int(n_events),
        "density": round(n_events / max(1, n_users * n_items), 6),
        "has_timestamps": timestamps_missing == 0,
        "time_range": time_range,
        "sequence_length": {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 3),
                            **q, "max": int(lengths.max())},
        "source_events": int(raw_events),
        "dropped_rows": {k: int(v) for k, v in dropped.items()},
        "skipped_lines": {k: int(v) for k, v in source.skipped.items()},
        "item_text": {**{k: int(v) for k, v in items_filled.items()}, **text_stats},
        "reader_notes": source.notes,
        "split": {**split_info, **{f"{n}_rows": int(rows[n]) for n in ("train", "val", "test")},
                  "val_cold_rows": int(cold["val"]), "test_cold_rows": int(cold["test"]),
                  "test_cold_items": int(cold["test_items"])},
    }
