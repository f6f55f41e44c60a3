"""Training events and evaluation lists of the ranking study, from a prepared run folder.

- Training: every position ``t >= 1`` of a user's training sequence (``history + [target]`` of
  ``RUN/data/train.parquet``) is one observed event (last ``max_items`` items before it, item
  at ``t``, label 1); each epoch draws ``neg_ratio`` negatives per event (label 0) by training
  popularity (p ∝ count^alpha) or uniformly, re-drawn when they equal the positive.
- Evaluation: each val/test row is one list, the positive first and then ``N`` sampled
  negatives (by popularity or uniform, never the positive), drawn with a fixed seed so that every
  model ranks the same lists.
- Slices: ``cold`` = positive never seen in training; ``tail`` = warm positives among the least
  popular ``tail_share`` of the items seen in training (by training count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from semid.core.errors import DataError
from semid.core.run import RunFolder


@dataclass
class Events:
    history: np.ndarray  # [E, H] item ids, right-aligned, padded with n_items
    item: np.ndarray  # [E]


@dataclass
class Lists:
    history: np.ndarray  # [U, H]
    candidates: np.ndarray  # [U, 1 + N], positive in column 0
    users: np.ndarray  # [U]
    cold: np.ndarray  # [U] bool
    tail: np.ndarray  # [U] bool

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> Lists:
        return Lists(self.history[rows], self.candidates[rows], self.users[rows], self.cold[rows], self.tail[rows])


@dataclass
class RankData:
    n_items: int
    max_items: int
    train: Events
    counts: np.ndarray  # [N] training count of each item
    val: Lists
    test: Lists
    cache: dict = field(default_factory=dict)  # per-dataset artefacts shared by the cells of a study


def right_aligned(seqs: list[np.ndarray], width: int, pad: int) -> np.ndarray:
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-width:]
        if len(s):
            out[i, width - len(s):] = s
    return out


def train_events(seqs: list[np.ndarray], width: int, pad: int) -> Events:
    """One event per position t >= 1 of each sequence, with the ``width`` items before it."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    flat = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(len(flat))
    keep = pos > starts
    g, s = pos[keep], starts[keep]
    idx = g[:, None] - width + np.arange(width)
    hist = np.where(idx >= s[:, None], flat[np.clip(idx, 0, None)], pad)
    return Events(hist, flat[g])


def sampler(counts: np.ndarray, how: str, alpha: float = 1.0) -> np.ndarray:
    """Cumulative distribution of negatives: p ∝ count^alpha (unseen items never), or uniform."""
    c = counts.astype(np.float64)
    p = np.where(c > 0, c ** alpha, 0.0) if how == "popularity" else np.ones(len(counts))
    if p.sum() <= 0:
        raise DataError("no training events: cannot sample negatives")
    return np.cumsum(p / p.sum())


def draw(cdf: np.ndarray, avoid: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """[len(avoid), k] items from ``cdf``, none equal to its row's ``avoid`` item."""
    out = np.searchsorted(cdf, rng.random((len(avoid), k)) * cdf[-1], side="right").clip(0, len(cdf) - 1)
    for _ in range(100):
        bad = out == avoid[:, None]
        if not bad.any():
            break
        out[bad] = np.searchsorted(cdf, rng.random(int(bad.sum())) * cdf[-1], side="right").clip(0, len(cdf) - 1)
    return out


def training_examples(ev: Events, counts: np.ndarray, neg_ratio: int, how: str, alpha: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event index, candidate item, label) of the positives and freshly drawn negatives, shuffled."""
    n = len(ev.item)
    negs = draw(sampler(counts, how, alpha), ev.item, neg_ratio, rng)
    event = np.concatenate([np.arange(n), np.repeat(np.arange(n), neg_ratio)])
    item = np.concatenate([ev.item, negs.reshape(-1)])
    label = np.concatenate([np.ones(n, np.float32), np.zeros(n * neg_ratio, np.float32)])
    order = rng.permutation(len(event))
    return event[order], item[order], label[order]


def eval_lists(rows: pl.DataFrame, counts: np.ndarray, width: int, negatives: int, how: str, alpha: float,
               seed: int, tail_items: np.ndarray) -> Lists:
    n_items = len(counts)
    if negatives >= n_items:
        raise DataError(f"{negatives} negatives per list but only {n_items} items")
    targets = rows["target"].to_numpy().astype(np.int64)
    hist = right_aligned([np.asarray(h, dtype=np.int64) for h in rows["history"].to_list()], width, n_items)
    negs = draw(sampler(counts, how, alpha), targets, negatives, np.random.default_rng(seed))
    cold = counts[targets] == 0
    return Lists(hist, np.c_[targets, negs], rows["user_id"].to_numpy().astype(np.int64), cold,
                 tail_items[targets] & ~cold)


def tail_mask(counts: np.ndarray, share: float) -> np.ndarray:
    """Items seen in training whose count is within the lowest ``share`` of them (ties included)."""
    seen = counts[counts > 0]
    if len(seen) == 0:
        return np.zeros(len(counts), dtype=bool)
    cut = np.quantile(seen, share, method="lower")
    return (counts > 0) & (counts <= cut)


def load(run_dir: Path, *, max_items: int, negatives: int, sampling: str, alpha: float, seed: int,
         val_users: int | None = None, tail_share: float = 0.5) -> RankData:
    """Everything the ranker needs from ``RUN/data``."""
    run = RunFolder(run_dir)
    items = run.table("items")
    n_items = items.height
    train = run.table("train")
    if train.height == 0:
        raise DataError(f"{run_dir}/data/train.parquet has no rows")
    seqs = [np.append(np.asarray(h, dtype=np.int64), t) for h, t in
            zip(train["history"].to_list(), train["target"].to_list(), strict=True)]
    counts = np.bincount(np.concatenate(seqs), minlength=n_items)[:n_items]
    ev = train_events(seqs, max_items, n_items)
    tail = tail_mask(counts, tail_share)
    val = eval_lists(run.table("val"), counts, max_items, negatives, sampling, alpha, seed, tail)
    if val_users is not None and len(val) > val_users:
        val = val.subset(np.sort(np.random.default_rng(seed + 1).choice(len(val), val_users, replace=False)))
    test = eval_lists(run.table("test"), counts, max_items, negatives, sampling, alpha, seed + 2, tail)
    if len(test) == 0:
        raise DataError(f"{run_dir}/data/test.parquet has no rows")
    return RankData(n_items, max_items, ev, counts, val, test)
