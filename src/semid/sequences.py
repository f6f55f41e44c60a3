"""User sequences as training rows and evaluation histories, for every sequential model.

A train row of ``train.parquet`` is a user's whole training sequence ``history + [target]``
(:func:`sequences`). Models cut sequences into rows of bounded length (:func:`chunks`, or every
sliding window with :func:`windows`), group rows of similar length into batches
(:func:`length_batches`, reshuffled every epoch by :class:`Batches`) and pad them.

**One padding convention**: item rows are right-padded with ``-1`` (:func:`pad_items`). A model
that embeds item ids shifts them by one so that padding becomes row 0 (``pad_items(...) + 1``);
models on Semantic IDs turn ``-1`` into the PAD token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import torch

IGNORE = -100  # label of a position with nothing to predict (torch's cross-entropy ignore_index)


def sequences(train: pl.DataFrame) -> list[np.ndarray]:
    """A train row's whole sequence: history + [target]."""
    return [np.asarray(h + [t], dtype=np.int64) for h, t in zip(train["history"].to_list(), train["target"].to_list())]


def eval_histories(df: pl.DataFrame, max_items: int | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(histories, cut to the last ``max_items`` when given; targets; user ids) of a val/test split."""
    cut = slice(-max_items, None) if max_items else slice(None)
    hist = [np.asarray(h[cut], dtype=np.int64) for h in df["history"].to_list()]
    return hist, df["target"].to_numpy().astype(np.int64), df["user_id"].to_numpy().astype(np.int64)


def chunks(seqs: list[np.ndarray], size: int, overlap: int = 1) -> list[np.ndarray]:
    """Cut each sequence into pieces of at most ``size`` items, consecutive pieces sharing
    ``overlap`` items (1 for next-item rows, so every target is trained once; 0 for cloze)."""
    out = []
    step = size - overlap
    for s in seqs:
        for a in range(0, max(1, len(s) - overlap), step):
            piece = s[a:a + size]
            if len(piece) > overlap:
                out.append(piece)
    return out


def windows(seqs: list[np.ndarray], max_items: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Every (history, target) pair of every sequence, history cut to ``max_items``."""
    hist, targets = [], []
    for s in seqs:
        for t in range(1, len(s)):
            hist.append(s[max(0, t - max_items):t])
            targets.append(s[t])
    return hist, np.asarray(targets, dtype=np.int64)


def pad_items(rows: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Right-padded int64 ``[B, width]`` of item ids, ``-1`` after each row's end."""
    width = width if width is not None else max(len(r) for r in rows)
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def length_batches(lengths: np.ndarray, weights: np.ndarray, budget: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices grouped by length (random ties) into batches of about ``budget`` weight, in shuffled order."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches, cur, total = [], [], 0
    for i in order:
        cur.append(i)
        total += int(weights[i])
        if total >= budget:
            batches.append(np.asarray(cur))
            cur, total = [], 0
    if cur:
        batches.append(np.asarray(cur))
    rng.shuffle(batches)
    return batches


def cloze_mask(lengths: np.ndarray, width: int, mask_prob: float, rng: np.random.Generator, *,
               always_last: bool = False, last_only_share: float = 0.0) -> np.ndarray:
    """bool ``[B, width]``: the slots of a cloze (masked-item) batch to predict.

    Each real slot is masked with probability ``mask_prob``. ``always_last``: the last slot is
    masked too (SID-BERT4Rec). Otherwise a ``last_only_share`` of rows, and every row left with no
    mask, have only their last slot masked (BERT4Rec: training looks like inference sometimes).
    """
    real = np.arange(width)[None] < lengths[:, None]
    masked = (rng.random((len(lengths), width)) < mask_prob) & real
    if always_last:
        masked[np.arange(len(lengths)), lengths - 1] = True
        return masked
    only_last = rng.random(len(lengths)) < last_only_share
    fix = only_last | ~masked.any(1)
    masked[fix] = False
    masked[np.flatnonzero(fix), lengths[fix] - 1] = True
    return masked


# (row indices of one batch, the epoch's generator, epoch, batch number) -> the batch
Collate = Callable[[np.ndarray, np.random.Generator, int, int], Any]


class Batches(torch.utils.data.IterableDataset):
    """One epoch of ready batches per iteration, reshuffled every epoch from ``(seed, epoch)``.

    Rows are grouped by :func:`length_batches`; ``collate`` builds each batch and may draw from the
    epoch's generator (masks, negatives). ``epoch`` counts iterations; a resumed run sets it, and
    ``skip``, the batches of that epoch already trained (:meth:`semid.training.SemidModule.on_train_start`).
    Skipped batches are still built, so their draws leave the generator where an uninterrupted
    epoch had it. ``DataLoader(batch_size=None)`` iterates it.
    """

    def __init__(self, lengths: np.ndarray, weights: np.ndarray, budget: int, seed: int, collate: Collate):
        self.lengths, self.weights, self.budget, self.seed, self.collate = lengths, weights, budget, seed, collate
        self.epoch = self.skip = 0
        self._len = len(length_batches(lengths, weights, budget, np.random.default_rng([seed, 0])))

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        epoch, skip, rng = self.epoch, self.skip, np.random.default_rng([self.seed, self.epoch])
        self.epoch, self.skip = self.epoch + 1, 0
        for i, idx in enumerate(length_batches(self.lengths, self.weights, self.budget, rng)):
            batch = self.collate(idx, rng, epoch, i)
            if i >= skip:
                yield batch


class EvalBatches(torch.utils.data.IterableDataset):
    """Evaluation users in length-sorted batches: ``(collate(histories), targets, users)``."""

    def __init__(self, hist: list[np.ndarray], targets: np.ndarray, users: np.ndarray,
                 collate: Callable[[list[np.ndarray]], Any], batch_users: int = 256):
        order = np.argsort([len(h) for h in hist], kind="stable")
        self.parts = [order[i:i + batch_users] for i in range(0, len(order), batch_users)]
        self.hist, self.targets, self.users, self.collate = hist, targets, users, collate

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self):
        for idx in self.parts:
            yield (self.collate([self.hist[i] for i in idx]), torch.from_numpy(self.targets[idx]),
                   torch.from_numpy(self.users[idx]))
