"""Batches of the item-ID models (SASRec, GRU4Rec, BERT4Rec), on :mod:`semid.sequences`.

Item ids enter the models shifted by one (``pad_items(...) + 1``: 0 is padding) and BERT4Rec's
mask token is ``n_items + 1``.

- ``causal`` (SASRec, GRU4Rec): a sequence is cut into chunks of at most ``max_items + 1`` items,
  every item but the first of a sequence being a target exactly once; a row's input is
  ``chunk[:-1]`` and its labels ``chunk[1:]`` (next item at every position).
- ``cloze`` (BERT4Rec): chunks of at most ``max_items`` items; each epoch masks a random share of
  every row's items (:func:`semid.sequences.cloze_mask`).
"""

from __future__ import annotations

import numpy as np
import torch

from semid.sequences import IGNORE, Batches, chunks, cloze_mask, pad_items


def shifted(rows: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Right-padded ``[B, width]`` of item ids + 1 (0 = padding)."""
    return pad_items(rows, width) + 1


def history_batch(hists: list[np.ndarray], max_items: int, mask_token: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input for ranking: the last items of each history (then BERT4Rec's mask token) →
    ``(x [B, L], position to read [B])``."""
    keep = max_items - (mask_token is not None)
    rows = [np.asarray(h[-keep:], dtype=np.int64) for h in hists]
    x = shifted(rows, max(1, max(len(r) for r in rows) + (mask_token is not None)))
    last = np.array([len(r) for r in rows], dtype=np.int64)
    if mask_token is not None:
        x[np.arange(len(rows)), last] = mask_token
    else:
        last = np.maximum(last - 1, 0)  # an empty history reads the padding position
    return torch.from_numpy(x), torch.from_numpy(last)


def train_batches(seqs: list[np.ndarray], *, cloze: bool, max_items: int, batch_size: int, seed: int = 0,
                  mask_token: int = 0, mask_prob: float = 0.0, last_mask_share: float = 0.0) -> Batches:
    """One epoch of length-bucketed, shuffled batches: dicts with ``x`` and ``y`` ``[B, L]``
    (``y`` holds item ids, ``IGNORE`` where there is nothing to predict)."""
    rows = chunks(seqs, max_items, 0) if cloze else chunks(seqs, max_items + 1, 1)
    lengths = np.array([len(r) for r in rows])

    def collate(idx: np.ndarray, rng: np.random.Generator, epoch: int, i: int) -> dict[str, torch.Tensor]:
        part = [rows[j] for j in idx]
        if not cloze:
            x = shifted([r[:-1] for r in part])
            y = shifted([r[1:] for r in part], x.shape[1]) - 1
            y[y < 0] = IGNORE
            return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}
        x = shifted(part)
        masked = cloze_mask((x > 0).sum(1), x.shape[1], mask_prob, rng, last_only_share=last_mask_share)
        y = np.where(masked, x - 1, IGNORE)
        x = np.where(masked, mask_token, x)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}

    batches = Batches(lengths, np.ones(len(rows), dtype=np.int64), batch_size, seed, collate)
    batches.rows = rows
    batches.num_targets = int(lengths.sum() - (0 if cloze else len(rows)))
    return batches
