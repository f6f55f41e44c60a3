"""Making Semantic IDs unique: TIGER's extra code, or re-encoding that keeps IDs at L codes.

``extra_code`` (TIGER §3.1) appends 0, 1, 2, … among items that share all L codes, so an ID is
L + 1 tokens. ``reencode`` keeps IDs at L codes: in each group of items that share all L codes,
the item closest to the group's codeword keeps it and every other item moves to the nearest
*free* codeword of the last level under the same prefix (the next-best code at that level). When
all K last-level codes under a prefix are taken, the item moves one level up: the nearest
second-to-last code whose branch still has room, then the nearest free last code there (and so
on up, for a collapsed ID model).

    ids = unique_ids(codes, "reencode", codec=codec, x=x)          # [N, L+1], last column 0
    new = unique_ids(codes_new, "reencode", codec=codec, x=x_new, existing=catalogue_ids)

Both keep the ``[N, L+1]`` layout of :func:`semid.ids.table.load_semantic_ids` (the last column
is 0 under ``reencode``), so every stage reads both; the tokenizer drops that column when the
table has none (see :func:`semid.ids.table.has_extra_code`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from semid.core.errors import DataError
from semid.ids import dedup as dd
from semid.ids.codec import Codec

Scheme = Literal["extra_code", "reencode", "none"]
CHUNK = 8192


def unique_ids(codes: np.ndarray, scheme: Scheme, *, codec: Codec | None = None, x: np.ndarray | None = None,
               existing: np.ndarray | None = None) -> np.ndarray:
    """Full IDs [N, L+1] of items with raw ``codes`` [N, L], unique among themselves and against
    ``existing`` [M, L+1] (a catalogue whose IDs stay as they are). ``reencode`` needs the ID model
    (``codec``) and the items' embeddings ``x``; ``none`` leaves collisions (analysis only)."""
    codes = np.asarray(codes, dtype=np.int64)
    zeros = np.zeros((len(codes), 1), dtype=np.int64)
    if scheme == "none":
        return np.hstack([codes, zeros])
    if scheme == "extra_code":
        extra = dd.dedup_codes(codes) if existing is None else dd.dedup_against(existing, codes)
        return np.hstack([codes, extra[:, None]])
    if scheme != "reencode":
        raise ValueError(f"unknown collision scheme {scheme!r}; known: extra_code, reencode, none")
    if codec is None or x is None:
        raise ValueError("re-encoding collisions needs the ID model and the items' embeddings")
    held = np.zeros((0, codes.shape[1]), dtype=np.int64) if existing is None else np.asarray(existing)[:, :codes.shape[1]]
    return np.hstack([reencode(codec, x, codes, held), zeros])


def latent_of(codec: Codec, x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` in the space the codebooks live in (the RQ-VAE's latent space, else ``x``)."""
    return np.vstack([codec.latent(codec.check(x[a:a + CHUNK])) for a in range(0, len(x), CHUNK)]) if len(x) else \
        np.zeros((0, codec.codebooks.shape[-1]), dtype=np.float32)


def residual(z: np.ndarray, books: np.ndarray, codes: np.ndarray, depth: int) -> np.ndarray:
    """What is left of ``z`` after its first ``depth`` codewords."""
    out = np.array(z, dtype=np.float64)
    for level in range(depth):
        out -= books[level][codes[:, level]]
    return out


def sq_dist(r: np.ndarray, book: np.ndarray) -> np.ndarray:
    """Squared distances [n, K] from residuals [n, D] to a level's codewords [K, D]."""
    return (r * r).sum(1)[:, None] - 2 * r @ book.T.astype(np.float64) + (book.astype(np.float64) ** 2).sum(1)[None]


def prefix_keys(codes: np.ndarray, k: int, depth: int) -> np.ndarray:
    """One int64 per row for its first ``depth`` codes (mixed radix K)."""
    key = np.zeros(len(codes), dtype=np.int64)
    for level in range(depth):
        key = key * k + codes[:, level]
    return key


class Occupancy:
    """How many IDs lie under each prefix (of every length, the full ID included): counted once
    with numpy, then updated as items are placed."""

    def __init__(self, ids: np.ndarray, k: int):
        self.k, self.levels = k, ids.shape[1]
        self.base = [np.unique(prefix_keys(ids, k, d), return_counts=True) for d in range(self.levels + 1)]
        self.delta: dict[tuple[int, int], int] = {}

    def count(self, prefix: tuple[int, ...]) -> int:
        key = 0
        for c in prefix:
            key = key * self.k + c
        keys, counts = self.base[len(prefix)]
        i = int(np.searchsorted(keys, key))
        return (int(counts[i]) if i < len(keys) and keys[i] == key else 0) + self.delta.get((len(prefix), key), 0)

    def full(self, prefix: tuple[int, ...]) -> bool:
        return self.count(prefix) >= self.k ** (self.levels - len(prefix))

    def add(self, ids: tuple[int, ...]) -> None:
        key = 0
        for depth, c in enumerate(ids, 1):
            key = key * self.k + c
            self.delta[(depth, key)] = self.delta.get((depth, key), 0) + 1


def keepers(codes: np.ndarray, err: np.ndarray, held: set[int], k: int) -> np.ndarray:
    """bool [N]: the item of each group of equal codes that keeps them (the one nearest its codeword,
    the first on ties); no item keeps codes that an existing item holds (``held``: their keys)."""
    keys = prefix_keys(codes, k, codes.shape[1])
    keep = np.zeros(len(codes), dtype=bool)
    seen = set(held)
    for i in np.lexsort((np.arange(len(codes)), err)).tolist():
        if int(keys[i]) not in seen:
            seen.add(int(keys[i]))
            keep[i] = True
    return keep


def reencode(codec: Codec, x: np.ndarray, codes: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Codes [N, L] of ``codes`` with every collision moved to the nearest free ID (see the module
    docstring); ``held`` [M, L] are IDs that are taken already and stay."""
    codes = np.array(codes, dtype=np.int64)
    n, levels = codes.shape
    k = codec.codebook_size
    if k ** levels >= 2 ** 62:
        raise DataError(f"collisions=reencode handles up to 2^62 possible IDs, not {k}^{levels}: use collisions=extra_code")
    keys, held_keys = prefix_keys(codes, k, levels), prefix_keys(np.asarray(held, dtype=np.int64), k, levels)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    clash = (counts[inverse.reshape(-1)] > 1) | np.isin(keys, held_keys)
    if not clash.any():
        return codes
    books = np.asarray(codec.codebooks, dtype=np.float64)
    rows = np.flatnonzero(clash)
    z = latent_of(codec, np.asarray(x)[rows])
    final = residual(z, books, codes[rows], levels)
    keep = np.ones(n, dtype=bool)
    keep[rows] = keepers(codes[rows], (final * final).sum(1), set(held_keys.tolist()), k)
    occupied = Occupancy(np.vstack([held, codes[keep]]), k)
    for j in np.flatnonzero(~keep[rows]).tolist():
        codes[rows[j]] = place(z[j], codes[rows[j]], books, occupied)
        occupied.add(tuple(codes[rows[j]].tolist()))
    return codes


def place(z: np.ndarray, own: np.ndarray, books: np.ndarray, occupied: Occupancy) -> np.ndarray:
    """The nearest free ID for one item whose own ID is taken: the nearest free last code under its
    prefix; when that prefix is full, the nearest code with room one level up (then two, …), and
    below it the nearest codes with room down to the last level."""
    levels, k = len(own), occupied.k
    for depth in range(levels - 1, -1, -1):  # keep the first ``depth`` codes, change the rest
        prefix = tuple(own[:depth].tolist())
        r = residual(z[None], books, own[None], depth)[0]
        for c in np.argsort(sq_dist(r[None], books[depth])[0], kind="stable").tolist():
            if not occupied.full((*prefix, c)):
                return descend((*prefix, c), r - books[depth][c], books, occupied)
    raise DataError(f"more than {k}^{levels} items need IDs of {levels} levels with {k} codes: use more levels "
                    "or a larger codebook")


def descend(prefix: tuple[int, ...], r: np.ndarray, books: np.ndarray, occupied: Occupancy) -> np.ndarray:
    """Below ``prefix`` (which has room), the nearest code with room at each level down to a free ID."""
    while len(prefix) < len(books):
        level = len(prefix)
        for c in np.argsort(sq_dist(r[None], books[level])[0], kind="stable").tolist():
            if not occupied.full((*prefix, c)):
                prefix, r = (*prefix, c), r - books[level][c]
                break
    return np.array(prefix, dtype=np.int64)
