"""TIGER's collision code: items that share all L codes get an extra code 0, 1, 2, … so every
Semantic ID is unique (Rajput et al., 2023, §3.1). GRID (2025) found it about as good as picking
a random item among the colliding ones."""

from __future__ import annotations

import numpy as np


def dedup_codes(codes: np.ndarray) -> np.ndarray:
    """Rank of each item among the items with the same L codes, in item order (0 for the first)."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    sorted_groups = inverse[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(order)) - group_start
    return rank


def dedup_against(existing: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Extra codes for ``new`` items [M, L] that keep IDs unique against ``existing`` [N, L+1]
    (L codes + extra code): each new item takes the next free extra code of its group."""
    taken: dict[tuple[int, ...], int] = {}
    for row in np.asarray(existing):
        key = tuple(int(c) for c in row[:-1])
        taken[key] = max(taken.get(key, -1), int(row[-1]))
    out = np.empty(len(new), dtype=np.int64)
    for i, row in enumerate(np.asarray(new)):
        key = tuple(int(c) for c in row)
        out[i] = taken.get(key, -1) + 1
        taken[key] = out[i]
    return out


def collision_stats(codes: np.ndarray) -> dict[str, float | int]:
    """Items sharing all their codes with another item, before the extra code."""
    n = len(codes)
    if n == 0:
        return {"items": 0, "unique_ids": 0, "items_in_collision": 0, "collision_share": 0.0, "largest_group": 0,
                "groups_with_collision": 0}
    _, counts = np.unique(codes, axis=0, return_counts=True)
    colliding = int(counts[counts > 1].sum())
    return {"items": n, "unique_ids": len(counts), "items_in_collision": colliding,
            "collision_share": colliding / n, "largest_group": int(counts.max()),
            "groups_with_collision": int((counts > 1).sum())}
