"""Training and evaluation batches for TIGER, built with numpy from the prepared splits.

Sliding windows: every position of a training sequence is a target (GRID found this matters).

- ``causal`` encoder: a sequence (cut into chunks of at most ``max_items + 1`` items) is one
  row; its first ``n - 1`` items are the encoder input, and each of the ``n - 1`` targets is one
  decoder block that sees the items before it. A chunk after the first starts where the last
  one ended, so a target in it sees the chunk's items only (rare on Beauty: 3.9% of training sequences
  are longer than 21 items).
- ``bidirectional`` encoder: every window is its own row (history = the last ``max_items``
  items before the target).

Rows are sorted by length into batches of about ``batch_size`` targets (little padding), and
the batch order is shuffled every epoch (:class:`semid.sequences.Batches`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from semid.generative.tokens import BOS, item_tokens_of
from semid.sequences import IGNORE, Batches, chunks, pad_items, windows


@dataclass
class Batch:
    enc: torch.Tensor  # [B, S] history tokens, PAD after the end
    dec_in: torch.Tensor  # [B, M, T] BOS + target tokens[:-1]
    labels: torch.Tensor  # [B, M, T] target tokens, IGNORE for padded targets
    limit: torch.Tensor  # [B, M] a target sees memory items < limit
    users: torch.Tensor  # [B]

    def to(self, device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (self.enc, self.dec_in, self.labels, self.limit, self.users)))

    @property
    def num_targets(self) -> int:
        return int((self.labels[..., 0] != IGNORE).sum())


def collate_causal(rows: list[np.ndarray], users: np.ndarray, item_tokens: np.ndarray) -> Batch:
    items = pad_items(rows)
    n = items.shape[1]
    tok = item_tokens_of(items, item_tokens)  # [B, n, T]
    b, _, t = tok.shape
    enc = tok[:, :-1].reshape(b, -1)
    targets = tok[:, 1:]  # [B, n-1, T]
    dec_in = np.concatenate([np.full((b, n - 1, 1), BOS), targets[..., :-1]], 2)
    labels = np.where(items[:, 1:, None] >= 0, targets, IGNORE)
    limit = np.broadcast_to(np.arange(1, n), (b, n - 1)).copy()
    return Batch(*(torch.from_numpy(np.ascontiguousarray(x)) for x in (enc, dec_in, labels, limit, users)))


def collate_windows(hist: list[np.ndarray], targets: np.ndarray, users: np.ndarray, item_tokens: np.ndarray) -> Batch:
    items = pad_items(hist)
    b = len(hist)
    enc = item_tokens_of(items, item_tokens).reshape(b, -1)
    tgt = item_tokens[targets][:, None]  # [B, 1, T]
    dec_in = np.concatenate([np.full((b, 1, 1), BOS), tgt[..., :-1]], 2)
    limit = np.array([[len(h)] for h in hist])
    return Batch(*(torch.from_numpy(np.ascontiguousarray(x)) for x in (enc, dec_in, tgt, limit, users)))


def train_batches(seqs: list[np.ndarray], users: np.ndarray, item_tokens: np.ndarray, *, mode: str, max_items: int,
                  batch_size: int, seed: int, user_buckets: int = 0) -> Batches:
    """One epoch of :class:`Batch` es of about ``batch_size`` targets (``mode``: the encoder mask)."""
    bucket = (lambda u: u % user_buckets) if user_buckets else (lambda u: np.zeros_like(u))
    if mode == "causal":
        rows, row_user = [], []
        for s, u in zip(seqs, users):
            for c in chunks([s], max_items + 1, 1):
                rows.append(c)
                row_user.append(u)
        lengths = np.array([len(r) for r in rows])
        weights = lengths - 1
    else:
        rows, targets = windows(seqs, max_items)
        row_user = np.repeat(users, [len(s) - 1 for s in seqs])
        lengths = np.array([len(h) for h in rows])
        weights = np.ones(len(rows), dtype=np.int64)
    row_user = np.asarray(row_user, dtype=np.int64)

    def collate(idx: np.ndarray, rng: np.random.Generator, epoch: int, i: int) -> Batch:
        u = bucket(row_user[idx])
        if mode == "causal":
            return collate_causal([rows[j] for j in idx], u, item_tokens)
        return collate_windows([rows[j] for j in idx], targets[idx], u, item_tokens)

    batches = Batches(lengths, weights, batch_size, seed, collate)
    batches.num_examples = int(weights.sum())
    return batches
