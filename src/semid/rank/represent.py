"""Item representations: modules that turn item ids into embeddings through embedding rows.

Every module maps item ids ``[...]`` to ``[..., d]``; the id ``n_items`` is padding (a zero
vector). Each exposes ``rows`` (embedding rows it owns) and ``num_params``. All but ``dense``
are a :class:`PieceEmbedding`: an item is the sum of the rows of its pieces, precomputed as a
``[N + 1, P]`` table of row indices (padded with a zero row).

Table size ``T`` is a budget of rows, so methods compare at equal memory: ``hash`` has T rows,
the n-gram tables of ``bigram``/``prefix`` share T rows (n-grams of a table smaller than K^n are
hashed with splitmix64, so unrelated n-grams may collide, as item ids do under random hashing),
``spm`` has a vocabulary of T pieces; ``unigram`` always has L·K rows and ``dense`` none.

``unigram_dedup`` is the collision-free reference of the SID representations: ``unigram`` plus
TIGER's dedup code (0, 1, 2, … among items sharing all L codes) as one more level, so every item
has a unique ID; ``unigram_dedup`` − ``unigram`` is the effect of SID collisions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from semid.core.errors import ConfigError
from semid.ids.dedup import dedup_codes


def mix64(x: np.ndarray, salt: int = 0) -> np.ndarray:
    """splitmix64 finaliser of ``x ^ salt`` (uint64, wraps): a well-spread hash."""
    with np.errstate(over="ignore"):
        z = (np.asarray(x).astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def split_budget(full: list[int], budget: int) -> list[int]:
    """Rows of each table when tables of ``full`` sizes share ``budget`` rows: water-filling, so a
    small table keeps all its rows and the rest share what is left equally (sum = min(budget, Σ full))."""
    alloc = [0] * len(full)
    left, order = budget, sorted(range(len(full)), key=lambda i: full[i])
    for k, i in enumerate(order):
        alloc[i] = max(1, min(full[i], left // (len(full) - k)))
        left -= alloc[i]
    return alloc


def ngram_rows(codes: np.ndarray, size: int, rows: int, salt: int) -> np.ndarray:
    """Row of each item's n-gram ``codes`` [N, n] in a table of ``rows`` rows: the exact index
    ``c1·K^(n-1) + … + cn`` when ``K^n <= rows``, else a splitmix64 hash of the n-gram mod rows."""
    n = codes.shape[1]
    if size ** n <= rows:
        key = np.zeros(len(codes), dtype=np.int64)
        for j in range(n):
            key = key * size + codes[:, j]
        return key
    key = np.zeros(len(codes), dtype=np.uint64)
    for j in range(n):
        key = mix64(key, salt) ^ codes[:, j].astype(np.uint64)
    return (mix64(key, salt + n) % np.uint64(rows)).astype(np.int64)


def _tables(codes: np.ndarray, spans: list[tuple[int, int]], size: int, budget: int,
            salt: int) -> tuple[np.ndarray, int]:
    """Row indices [N, len(spans)] of the n-grams ``codes[:, a:b]`` in tables sharing ``budget``."""
    alloc = split_budget([size ** (b - a) for a, b in spans], budget)
    cols, offset = [], 0
    for (a, b), rows in zip(spans, alloc, strict=True):
        cols.append(ngram_rows(codes[:, a:b], size, rows, salt + 64 * a + b) + offset)
        offset += rows
    return np.stack(cols, 1), offset


class PieceEmbedding(nn.Module):
    """item → sum of the embeddings of its pieces; ``pieces`` [N, P] row indices, -1 = none."""

    def __init__(self, pieces: np.ndarray, rows: int, dim: int):
        super().__init__()
        pieces = np.asarray(pieces, dtype=np.int64)
        self.rows, self.n_items, self.dim = int(rows), len(pieces), dim
        padded = np.full((len(pieces) + 1, pieces.shape[1]), rows, dtype=np.int64)
        padded[:-1] = np.where(pieces < 0, rows, pieces)
        self.register_buffer("pieces", torch.from_numpy(padded), persistent=False)
        self.table = nn.Embedding(rows + 1, dim, padding_idx=rows)
        nn.init.normal_(self.table.weight, std=0.05)
        with torch.no_grad():
            self.table.weight[rows].zero_()

    @property
    def num_params(self) -> int:
        return self.rows * self.dim

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.table(self.pieces[items]).sum(-2)


class HashEmbedding(PieceEmbedding):
    """Random hashing: item id hashed into ``T`` rows. rows = T."""

    def __init__(self, n_items: int, table_size: int, dim: int, seed: int = 0):
        rows = (mix64(np.arange(n_items), 0x5EED0000 + seed) % np.uint64(table_size)).astype(np.int64)
        super().__init__(rows[:, None], table_size, dim)


class UnigramEmbedding(PieceEmbedding):
    """Unigram-SID: one K-row table per level, summed. rows = L·K."""

    def __init__(self, codes: np.ndarray, size: int, dim: int):
        levels = codes.shape[1]
        super().__init__(codes + np.arange(levels) * size, levels * size, dim)


class UnigramDedupEmbedding(PieceEmbedding):
    """Unigram-SID + dedup code: the L K-row code tables plus one table of dedup codes (0 for the
    first item of each SID, 1, 2, … for the items colliding with it), summed. (c1, …, cL, dedup)
    is unique per item, so no two items share all their rows. rows = L·K + (largest dedup + 1)."""

    def __init__(self, codes: np.ndarray, size: int, dim: int):
        codes = np.asarray(codes, dtype=np.int64)
        levels, dedup = codes.shape[1], dedup_codes(codes)
        offset = levels * size
        pieces = np.concatenate([codes + np.arange(levels) * size, (offset + dedup)[:, None]], 1)
        super().__init__(pieces, offset + int(dedup.max(initial=0)) + 1, dim)


class BigramEmbedding(PieceEmbedding):
    """Bigram-SID: non-overlapping level pairs (1,2), (3,4), …, one table per pair (K² rows), an
    odd last level a K-row unigram table; the tables share the budget T (:func:`split_budget`;
    a pair table smaller than K² hashes its bigrams). rows = min(T, ⌊L/2⌋·K² + (L mod 2)·K)."""

    def __init__(self, codes: np.ndarray, size: int, budget: int, dim: int, seed: int = 0):
        levels = codes.shape[1]
        spans = [(j, min(j + 2, levels)) for j in range(0, levels, 2)]
        pieces, rows = _tables(codes, spans, size, budget, 0xB16A0000 + seed * 4096)
        super().__init__(pieces, rows, dim)


class PrefixEmbedding(PieceEmbedding):
    """Prefix n-gram SID: one row per prefix (c1), (c1,c2), …, (c1..cL); the L tables (K^l rows
    each) share the budget T (:func:`split_budget`; tables smaller than K^l hash their prefixes).
    rows = min(T, Σ_l K^l)."""

    def __init__(self, codes: np.ndarray, size: int, budget: int, dim: int, seed: int = 0):
        spans = [(0, j) for j in range(1, codes.shape[1] + 1)]
        pieces, rows = _tables(codes, spans, size, budget, 0x9EF10000 + seed * 4096)
        super().__init__(pieces, rows, dim)


class SpmEmbedding(PieceEmbedding):
    """SPM-SID: an item is the sum of its SentencePiece pieces. rows = V (vocabulary size)."""

    def __init__(self, item_pieces: list[list[int]], vocab_size: int, dim: int):
        width = max(len(p) for p in item_pieces)
        pieces = np.full((len(item_pieces), width), -1, dtype=np.int64)
        for i, p in enumerate(item_pieces):
            pieces[i, :len(p)] = p
        super().__init__(pieces, vocab_size, dim)


class DenseEmbedding(nn.Module):
    """Dense input: the frozen content embedding [N, e] through a linear projection to d.
    rows = 0 (no embedding table); params = e·d + d."""

    def __init__(self, embeddings: np.ndarray, dim: int):
        super().__init__()
        emb = np.asarray(embeddings, dtype=np.float32)
        self.rows, self.n_items, self.dim = 0, len(emb), dim
        padded = np.zeros((len(emb) + 1, emb.shape[1]), dtype=np.float32)
        padded[:-1] = emb
        self.register_buffer("content", torch.from_numpy(padded), persistent=False)
        self.proj = nn.Linear(emb.shape[1], dim)
        self.register_buffer("is_item", torch.arange(len(emb) + 1) < len(emb), persistent=False)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.proj.parameters())

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        table = self.proj(self.content) * self.is_item.unsqueeze(-1)  # project the catalogue once
        return table[items]


def build(name: str, *, n_items: int, dim: int, table_size: int, seed: int = 0, codes: np.ndarray | None = None,
          codebook_size: int | None = None, embeddings: np.ndarray | None = None,
          item_pieces: list[list[int]] | None = None, vocab_size: int | None = None) -> nn.Module:
    """The representation ``name`` for ``n_items`` items (SID ones need ``codes`` [N, L] and K)."""
    if name == "hash":
        return HashEmbedding(n_items, table_size, dim, seed)
    if name == "dense":
        if embeddings is None or len(embeddings) != n_items:
            raise ConfigError("dense representation needs the item embeddings (RUN/embed/item_embeddings.npy)")
        return DenseEmbedding(embeddings, dim)
    if name == "spm":
        if item_pieces is None or vocab_size is None:
            raise ConfigError("spm representation needs a trained SPM vocabulary")
        return SpmEmbedding(item_pieces, vocab_size, dim)
    if codes is None or codebook_size is None or len(codes) != n_items:
        raise ConfigError(f"{name} representation needs Semantic IDs for all {n_items} items")
    if name == "unigram":
        return UnigramEmbedding(codes, codebook_size, dim)
    if name == "unigram_dedup":
        return UnigramDedupEmbedding(codes, codebook_size, dim)
    if name == "bigram":
        return BigramEmbedding(codes, codebook_size, table_size, dim, seed)
    if name == "prefix":
        return PrefixEmbedding(codes, codebook_size, table_size, dim, seed)
    raise ConfigError(f"unknown representation {name!r} (hash, dense, unigram, unigram_dedup, bigram, prefix, spm)")
