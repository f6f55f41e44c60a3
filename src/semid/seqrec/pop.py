"""Most-popular baseline: every user gets the items most frequent in the training sequences."""

from __future__ import annotations

import numpy as np


def counts(train_seqs: list[np.ndarray], n_items: int) -> np.ndarray:
    """How often each item occurs in the training sequences (history + target of train rows)."""
    if not train_seqs:
        return np.zeros(n_items, dtype=np.int64)
    return np.bincount(np.concatenate(train_seqs), minlength=n_items).astype(np.int64)


def top_items(count: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` most frequent items, ties broken by the smaller item id."""
    order = np.lexsort((np.arange(len(count)), -count))
    return order[:k].astype(np.int64)
