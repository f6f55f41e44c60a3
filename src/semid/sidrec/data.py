"""Training batches for the Semantic-ID baselines, built with numpy from the prepared splits.

A training sequence (history + target, :func:`semid.tiger.data.sequences`) is cut into chunks of
at most ``max_items + 1`` items (:func:`semid.tiger.data.chunks`); a chunk is one row. Rows of
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

from semid.ids.tokens import PAD
from semid.tiger.data import chunks, history_tokens, length_batches


@dataclass
class SeqBatch:
    tokens: torch.Tensor  # int64 [B, n, T]: the rows' items as ID tokens, PAD after the end
    masked: torch.Tensor  # bool [B, n]: slots to predict from the others (SID-BERT4Rec; all False for SID-GRU)

    def to(self, device) -> SeqBatch:
        return SeqBatch(self.tokens.to(device, non_blocking=True), self.masked.to(device, non_blocking=True))


def item_tokens_3d(hist: list[np.ndarray], item_tokens: np.ndarray) -> torch.Tensor:
    """Item arrays → int64 [B, n, T] tokens, right-padded with PAD items."""
    return history_tokens(hist, item_tokens).view(len(hist), -1, item_tokens.shape[1])


def cloze_mask(lengths: np.ndarray, width: int, mask_prob: float, rng: np.random.Generator) -> np.ndarray:
    """bool [B, width]: each real slot with probability ``mask_prob``, and always the last one."""
    real = np.arange(width)[None] < lengths[:, None]
    masked = (rng.random((len(lengths), width)) < mask_prob) & real
    masked[np.arange(len(lengths)), lengths - 1] = True
    return masked


class TrainRows(torch.utils.data.Dataset):
    """One epoch of ready batches (``DataLoader(batch_size=None)`` iterates them); ``set_epoch``
    reshuffles (and redraws masks)."""

    def __init__(self, seqs: list[np.ndarray], item_tokens: np.ndarray, *, max_items: int, batch_size: int,
                 seed: int, mask_prob: float | None = None):
        self.rows = chunks(seqs, max_items)
        self.item_tokens, self.batch_size, self.seed, self.mask_prob = item_tokens, batch_size, seed, mask_prob
        self.lengths = np.array([len(r) for r in self.rows], dtype=np.int64)
        self.num_targets = int((self.lengths - 1).sum())
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        self.batches = length_batches(self.lengths, np.ones(len(self.rows), dtype=np.int64), self.batch_size, rng)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> SeqBatch:
        idx = self.batches[i]
        tokens = item_tokens_3d([self.rows[j] for j in idx], self.item_tokens)
        if self.mask_prob is None:
            masked = np.zeros(tokens.shape[:2], dtype=bool)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            masked = cloze_mask(self.lengths[idx], tokens.shape[1], self.mask_prob, rng)
        return SeqBatch(tokens, torch.from_numpy(masked))


def gru_targets(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(source positions bool [B, n], target tokens [N, T]): position t predicts item t + 1."""
    nxt = tokens[:, 1:]
    valid = nxt[..., 0] != PAD
    src = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    src[:, :-1] = valid
    return src, nxt[valid]
