"""Semantic-ID tokenisation: the one mapping between item IDs and model tokens.

An item's Semantic ID is ``(c_1, ..., c_L, dedup)``: ``L`` codes in ``0..K-1`` and a collision
code that makes IDs unique. Each position has its own token range, so the same code value at
two levels is two different tokens (TIGER §3.2):

    token = 0, 1, 2                      pad, bos, eos
    token = offset(l) + c                level l = 0..L-1,  offset(l) = 3 + l*K
    token = 3 + L*K + dedup              the collision level, sized max(dedup) + 1

IDs that were made unique at ``L`` codes (``collisions=reencode``) have no collision level:
``dedup_size`` is 0 and an item is ``L`` tokens; the codes table keeps its last column of zeros.

TIGER, the SID models, the trie, beam search and the service all go through :class:`SIDTokenizer`;
:func:`history_tokens` turns item histories (padded with ``-1``) into token rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semid.sequences import pad_items

PAD, BOS, EOS = 0, 1, 2
NUM_SPECIAL = 3


class SIDTokenizer:
    """Maps items ↔ token sequences of length ``L + 1`` (codes then the dedup code), or ``L`` when
    ``dedup_size`` is 0 (IDs unique at L codes).

    >>> tok = SIDTokenizer.from_codes(codes)          # codes: int [N, L+1], last column = dedup
    >>> tok.item_tokens.shape                        # (N, L+1)
    >>> tok.level_range(0)                           # (3, 3 + K): tokens of the first level
    """

    def __init__(self, codes: np.ndarray, *, codebook_size: int, dedup_size: int | None = None):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] < 2:
            raise ValueError(f"codes must be [N, L+1] (levels then dedup), got shape {codes.shape}")
        self.codes = codes
        self.num_levels = codes.shape[1] - 1
        self.codebook_size = int(codebook_size)
        max_dedup = int(codes[:, -1].max()) + 1 if len(codes) else 1
        self.dedup_size = int(dedup_size) if dedup_size is not None else max_dedup
        if codes[:, :-1].size and (codes[:, :-1].min() < 0 or codes[:, :-1].max() >= self.codebook_size):
            raise ValueError(f"codes must lie in 0..{self.codebook_size - 1}")
        if self.dedup_size == 0 and len(codes) and codes[:, -1].any():
            raise ValueError("IDs of L codes (dedup_size 0) must have a last column of zeros")
        if self.dedup_size and len(codes) and (codes[:, -1].min() < 0 or max_dedup > self.dedup_size):
            raise ValueError(f"dedup codes must lie in 0..{self.dedup_size - 1}")
        self.offsets = np.array([NUM_SPECIAL + lvl * self.codebook_size for lvl in range(self.num_levels)]
                                + [NUM_SPECIAL + self.num_levels * self.codebook_size] * (self.dedup_size > 0),
                                dtype=np.int64)
        self.item_tokens = torch.from_numpy(codes[:, :self.id_length] + self.offsets[None, :])

    @classmethod
    def from_codes(cls, codes: np.ndarray, codebook_size: int | None = None, extra_code: bool = True) -> SIDTokenizer:
        """``extra_code=False``: the IDs are unique at L codes and the last column (zeros) is no token."""
        codes = np.asarray(codes)
        k = int(codes[:, :-1].max()) + 1 if codebook_size is None else codebook_size
        return cls(codes, codebook_size=k, dedup_size=None if extra_code else 0)

    # ---- shape of the vocabulary -------------------------------------------------------------
    @property
    def num_items(self) -> int:
        return len(self.codes)

    @property
    def id_length(self) -> int:
        """Tokens per item: L codes + the dedup code (L when there is none)."""
        return self.num_levels + (self.dedup_size > 0)

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + self.num_levels * self.codebook_size + self.dedup_size

    def level_width(self, level: int) -> int:
        return self.dedup_size if level == self.num_levels else self.codebook_size

    def level_range(self, level: int) -> tuple[int, int]:
        """[start, end) of the tokens of position ``level`` (``level == L`` is the dedup level)."""
        start = int(self.offsets[level])
        return start, start + self.level_width(level)

    def level_mask(self) -> torch.Tensor:
        """bool [L+1, vocab]: which tokens may appear at each position of an ID."""
        mask = torch.zeros(self.id_length, self.vocab_size, dtype=torch.bool)
        for lvl in range(self.id_length):
            a, b = self.level_range(lvl)
            mask[lvl, a:b] = True
        return mask

    # ---- items ↔ tokens ----------------------------------------------------------------------
    def encode(self, item_ids: torch.Tensor) -> torch.Tensor:
        """int [...] item ids → int [..., L+1] tokens."""
        return self.item_tokens[item_ids]

    def to_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """int [..., T] tokens → codes (the level offsets removed)."""
        return tokens - torch.as_tensor(self.offsets, device=tokens.device)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """int [..., T] tokens → item ids, -1 where the tokens form no item's ID."""
        keys = self._keys(self.to_codes(tokens))
        table, order = self._lookup()
        table, order = table.to(keys.device), order.to(keys.device)
        pos = torch.searchsorted(table, keys).clamp(max=len(table) - 1)
        found = table[pos] == keys
        in_range = self._in_range(tokens)
        return torch.where(found & in_range, order[pos], torch.full_like(keys, -1))

    def _in_range(self, tokens: torch.Tensor) -> torch.Tensor:
        ok = torch.ones(tokens.shape[:-1], dtype=torch.bool, device=tokens.device)
        for lvl in range(self.id_length):
            a, b = self.level_range(lvl)
            ok &= (tokens[..., lvl] >= a) & (tokens[..., lvl] < b)
        return ok

    def _keys(self, codes: torch.Tensor) -> torch.Tensor:
        """One int64 per ID (mixed radix); out-of-range codes give arbitrary keys, masked later."""
        key = torch.zeros(codes.shape[:-1], dtype=torch.int64, device=codes.device)
        for lvl in range(self.id_length):
            key = key * self.level_width(lvl) + codes[..., lvl].clamp(0, self.level_width(lvl) - 1)
        return key

    def _lookup(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_table"):
            keys = self._keys(torch.from_numpy(self.codes[:, :self.id_length]))
            keys, order = torch.sort(keys)
            if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
                raise ValueError("two items share one Semantic ID: the dedup code must make IDs unique")
            self._table, self._order = keys, order
        return self._table, self._order

    # ---- persistence -------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """Small JSON description (the codes themselves are saved apart)."""
        return {"num_levels": self.num_levels, "codebook_size": self.codebook_size,
                "dedup_size": self.dedup_size, "vocab_size": self.vocab_size, "num_items": self.num_items}


def item_tokens_of(items: np.ndarray, item_tokens: np.ndarray) -> np.ndarray:
    """items [B, n] (-1 = pad) → tokens [B, n, T] (PAD for pads)."""
    tok = item_tokens[np.clip(items, 0, None)]
    tok[items < 0] = PAD
    return tok


def history_tokens(hist: list[np.ndarray], item_tokens: np.ndarray, flat: bool = True) -> torch.Tensor:
    """Histories → right-padded tokens: ``[B, n * T]`` (``flat``) or ``[B, n, T]``."""
    items = pad_items(hist, max(1, max(len(h) for h in hist)))
    tok = torch.from_numpy(item_tokens_of(items, item_tokens))
    return tok.reshape(len(hist), -1) if flat else tok
