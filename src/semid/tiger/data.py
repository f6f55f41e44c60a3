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
the batch order is shuffled every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from semid.ids.tokens import BOS, PAD

IGNORE = -100


def sequences(train: pl.DataFrame) -> list[np.ndarray]:
    """A train row's whole sequence: history + [target]."""
    hist = train["history"].to_list()
    return [np.asarray(h + [t], dtype=np.int64) for h, t in zip(hist, train["target"].to_list())]


def chunks(seqs: list[np.ndarray], max_items: int) -> list[np.ndarray]:
    out = []
    for s in seqs:
        for a in range(0, max(1, len(s) - 1), max_items):
            piece = s[a:a + max_items + 1]
            if len(piece) >= 2:
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


def _pad_items(rows: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _tokens(items: np.ndarray, item_tokens: np.ndarray) -> np.ndarray:
    """items [B, n] (-1 = pad) → tokens [B, n, T] (PAD for pads)."""
    tok = item_tokens[np.clip(items, 0, None)]
    tok[items < 0] = PAD
    return tok


def collate_causal(rows: list[np.ndarray], users: np.ndarray, item_tokens: np.ndarray) -> Batch:
    n = max(len(r) for r in rows)
    items = _pad_items(rows, n)
    tok = _tokens(items, item_tokens)  # [B, n, T]
    b, _, t = tok.shape
    enc = tok[:, :-1].reshape(b, -1)
    targets = tok[:, 1:]  # [B, n-1, T]
    dec_in = np.concatenate([np.full((b, n - 1, 1), BOS), targets[..., :-1]], 2)
    labels = np.where(items[:, 1:, None] >= 0, targets, IGNORE)
    limit = np.broadcast_to(np.arange(1, n), (b, n - 1)).copy()
    return Batch(*(torch.from_numpy(np.ascontiguousarray(x)) for x in (enc, dec_in, labels, limit, users)))


def collate_windows(hist: list[np.ndarray], targets: np.ndarray, users: np.ndarray, item_tokens: np.ndarray) -> Batch:
    n = max(len(h) for h in hist)
    items = _pad_items(hist, n)
    b = len(hist)
    enc = _tokens(items, item_tokens).reshape(b, -1)
    tgt = item_tokens[targets][:, None]  # [B, 1, T]
    dec_in = np.concatenate([np.full((b, 1, 1), BOS), tgt[..., :-1]], 2)
    limit = np.array([[len(h)] for h in hist])
    return Batch(*(torch.from_numpy(np.ascontiguousarray(x)) for x in (enc, dec_in, tgt, limit, users)))


def length_batches(lengths: np.ndarray, weights: np.ndarray, budget: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Group row indices of similar length into batches of about ``budget`` weight, shuffled."""
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


class TrainBatches(torch.utils.data.Dataset):
    """One epoch of ready batches (``DataLoader(batch_size=None)`` iterates them).

    ``set_epoch`` reshuffles; Lightning's loop calls it through :class:`EpochShuffle`.
    """

    def __init__(self, seqs: list[np.ndarray], users: np.ndarray, item_tokens: np.ndarray, *, mode: str,
                 max_items: int, batch_size: int, seed: int, user_buckets: int = 0):
        self.item_tokens, self.mode, self.batch_size, self.seed = item_tokens, mode, batch_size, seed
        self.bucket = (lambda u: u % user_buckets) if user_buckets else (lambda u: np.zeros_like(u))
        if mode == "causal":
            self.rows, self.row_user = [], []
            for s, u in zip(seqs, users):
                for c in chunks([s], max_items):
                    self.rows.append(c)
                    self.row_user.append(u)
            self.lengths = np.array([len(r) for r in self.rows])
            self.weights = self.lengths - 1
        else:
            self.rows, self.targets = windows(seqs, max_items)
            self.row_user = np.repeat(users, [len(s) - 1 for s in seqs])
            self.lengths = np.array([len(h) for h in self.rows])
            self.weights = np.ones(len(self.rows), dtype=np.int64)
        self.row_user = np.asarray(self.row_user, dtype=np.int64)
        self.num_examples = int(self.weights.sum())
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self.batches = length_batches(self.lengths, self.weights, self.batch_size, rng)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        idx = self.batches[i]
        users = self.bucket(self.row_user[idx])
        if self.mode == "causal":
            return collate_causal([self.rows[j] for j in idx], users, self.item_tokens)
        return collate_windows([self.rows[j] for j in idx], self.targets[idx], users, self.item_tokens)


def eval_histories(df: pl.DataFrame, item_tokens: np.ndarray, max_items: int) -> tuple[list[np.ndarray], np.ndarray]:
    """(history item arrays cut to the last ``max_items``, targets) of a val/test split."""
    hist = [np.asarray(h[-max_items:], dtype=np.int64) for h in df["history"].to_list()]
    return hist, df["target"].to_numpy().astype(np.int64)


def history_tokens(hist: list[np.ndarray], item_tokens: np.ndarray) -> torch.Tensor:
    n = max(1, max(len(h) for h in hist))
    items = _pad_items(hist, n)
    return torch.from_numpy(_tokens(items, item_tokens).reshape(len(hist), -1))
