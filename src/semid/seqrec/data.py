"""Training and evaluation batches for the item-ID models, built with numpy from the splits.

A train row of ``train.parquet`` is a user's whole training sequence ``history + [target]``.

- ``causal`` (SASRec, GRU4Rec): a sequence is cut into chunks of at most ``max_items + 1``
  items, every item but the first of a sequence being a target exactly once; a row's input is
  ``chunk[:-1]`` and its labels ``chunk[1:]`` (next item at every position).
- ``cloze`` (BERT4Rec): chunks of at most ``max_items`` items; each epoch masks a random share
  of every row's items (at least one), or, for a share of rows, only the last item.

Rows are right-padded with 0 (item ids are shifted by one) and sorted by length, with random
ties, into batches of ``batch_size`` rows, whose order is shuffled every epoch.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

IGNORE = -100


def sequences(train: pl.DataFrame) -> list[np.ndarray]:
    """A train row's whole sequence: history + [target]."""
    return [np.asarray(h + [t], dtype=np.int64) for h, t in zip(train["history"].to_list(), train["target"].to_list())]


def eval_histories(df: pl.DataFrame) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(histories, targets, users) of a validation or test split."""
    hist = [np.asarray(h, dtype=np.int64) for h in df["history"].to_list()]
    return hist, df["target"].to_numpy().astype(np.int64), df["user_id"].to_numpy().astype(np.int64)


def chunks(seqs: list[np.ndarray], size: int, overlap: int) -> list[np.ndarray]:
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


def pad(rows: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Right-padded ``[B, width]`` of item ids + 1 (0 = padding)."""
    width = width or max(len(r) for r in rows)
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = np.asarray(r) + 1
    return out


def history_batch(hists: list[np.ndarray], max_items: int, mask_token: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input for ranking: the last items of each history (then BERT4Rec's mask token) →
    ``(x [B, L], position to read [B])``."""
    keep = max_items - (mask_token is not None)
    rows = [np.asarray(h[-keep:], dtype=np.int64) for h in hists]
    x = pad(rows, max(1, max(len(r) for r in rows) + (mask_token is not None)))
    last = np.array([len(r) for r in rows], dtype=np.int64)
    if mask_token is not None:
        x[np.arange(len(rows)), last] = mask_token
    else:
        last = np.maximum(last - 1, 0)  # an empty history reads the padding position
    return torch.from_numpy(x), torch.from_numpy(last)


class TrainBatches(torch.utils.data.IterableDataset):
    """One epoch of length-bucketed, shuffled batches: dicts with ``x`` and ``y`` ``[B, L]``
    (``y`` holds item ids, ``IGNORE`` where there is nothing to predict)."""

    def __init__(self, seqs: list[np.ndarray], *, mode: str, max_items: int, batch_size: int, seed: int = 0,
                 mask_token: int = 0, mask_prob: float = 0.0, last_mask_share: float = 0.0):
        if mode not in ("causal", "cloze"):
            raise ValueError(f"unknown batch mode {mode!r}")
        self.mode, self.batch_size, self.seed, self.epoch = mode, batch_size, seed, 0
        self.mask_token, self.mask_prob, self.last_mask_share = mask_token, mask_prob, last_mask_share
        self.rows = chunks(seqs, max_items + 1, 1) if mode == "causal" else chunks(seqs, max_items, 0)
        self.lengths = np.array([len(r) for r in self.rows])

    @property
    def num_targets(self) -> int:
        """Next-item targets per epoch (causal); items per epoch (cloze)."""
        return int(self.lengths.sum() - (len(self.rows) if self.mode == "causal" else 0))

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = np.lexsort((rng.random(len(self.rows)), self.lengths))
        parts = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for k in rng.permutation(len(parts)):
            yield self.collate([self.rows[i] for i in parts[k]], rng)

    def collate(self, rows: list[np.ndarray], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.mode == "causal":
            x = pad([r[:-1] for r in rows])
            y = pad([r[1:] for r in rows], x.shape[1]) - 1
            y[y < 0] = IGNORE
            return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}
        x = pad(rows)
        real = x > 0
        lengths = real.sum(1)
        masked = (rng.random(x.shape) < self.mask_prob) & real
        only_last = rng.random(len(rows)) < self.last_mask_share
        none = ~masked.any(1)
        fix = only_last | none
        masked[fix] = False
        masked[np.flatnonzero(fix), lengths[fix] - 1] = True
        y = np.where(masked, x - 1, IGNORE)
        x = np.where(masked, self.mask_token, x)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}
