"""Training batches for the Semantic-ID baselines, built with numpy from the prepared splits.

A training sequence (history + target, :func:`semid.sequences.sequences`) is cut into chunks of
at most ``max_items + 1`` items (:func:`semid.sequences.chunks`); a chunk is one row. Rows of
similar length are batched together (``batch_size`` rows each) and the batch order is shuffled
every epoch.

- SID-GRU: every item of a row after the first is a target, predicted from the items before it
  (all sliding windows of the row in one pass).
- SID-BERT4Rec: the row's last item and a random ``mask_prob`` share of the others are replaced
  by [MASK] and predicted (Cloze); the masks are redrawn every epoch from ``(seed, epoch, batch)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from semid.generative.tokens import history_tokens
from semid.sequences import Batches, chunks, cloze_mask


@dataclass
class SeqBatch:
    tokens: torch.Tensor  # int64 [B, n, T]: the rows' items as ID tokens, PAD after the end
    masked: torch.Tensor  # bool [B, n]: slots to predict from the others (SID-BERT4Rec; all False for SID-GRU)

    def to(self, device) -> SeqBatch:
        return SeqBatch(self.tokens.to(device, non_blocking=True), self.masked.to(device, non_blocking=True))


def train_rows(seqs: list[np.ndarray], item_tokens: np.ndarray, *, max_items: int, batch_size: int, seed: int,
               mask_prob: float | None = None) -> Batches:
    """One epoch of :class:`SeqBatch` es of ``batch_size`` rows; masks (``mask_prob`` set) are redrawn
    every epoch from ``(seed, epoch, batch)``."""
    rows = chunks(seqs, max_items + 1, 1)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)

    def collate(idx: np.ndarray, rng: np.random.Generator, epoch: int, i: int) -> SeqBatch:
        tokens = history_tokens([rows[j] for j in idx], item_tokens, flat=False)
        if mask_prob is None:
            masked = np.zeros(tokens.shape[:2], dtype=bool)
        else:
            masked = cloze_mask(lengths[idx], tokens.shape[1], mask_prob, np.random.default_rng([seed, epoch, i, 1]),
                                always_last=True)
        return SeqBatch(tokens, torch.from_numpy(masked))

    batches = Batches(lengths, np.ones(len(rows), dtype=np.int64), batch_size, seed, collate)
    batches.rows = rows
    batches.num_targets = int((lengths - 1).sum())
    return batches

