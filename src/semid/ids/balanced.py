"""Balanced (size-constrained) residual k-means: every code of a level holds at most
``ceil(N / K)`` training items, so no code is crowded and codes spread the catalogue evenly.

Each level starts from faiss k-means centroids on what the previous levels left, then alternates a
capacity-constrained assignment (:func:`balanced_assign`) with centroid updates. New items (``semid
ids assign``) take their nearest codes, as with plain RQ-KMeans: capacities shape the codebooks,
they do not bind items added later.

    books, codes = fit(x, levels=3, codebook_size=256, seed=0)   # [L, K, d], [N, L]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import faiss
import numpy as np

from semid.ids.rqkmeans import KMeansCodec, kmeans

if TYPE_CHECKING:
    from semid.ids.codec import Codec
    from semid.ids.config import IdsConfig


def balanced_assign(x: np.ndarray, cents: np.ndarray, cap: int, *, candidates: int = 16) -> np.ndarray:
    """Cluster of each row of ``x`` with at most ``cap`` rows per cluster, near the unconstrained
    nearest assignment: in rounds, every unplaced row proposes its next-nearest candidate cluster
    and each cluster takes the closest proposers it still has room for. Rows whose ``candidates``
    nearest clusters all fill up go, one by one, to their nearest cluster with room."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, k = len(x), len(cents)
    if cap * k < n:
        raise ValueError(f"{k} clusters of at most {cap} cannot hold {n} rows")
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(cents, dtype=np.float32))
    m = min(candidates, k)
    dist, cand = index.search(x, m)
    out = np.full(n, -1, dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    ptr = np.zeros(n, dtype=np.int64)
    while True:
        rows = np.flatnonzero((out < 0) & (ptr < m))
        if rows.size == 0:
            break
        c, d = cand[rows, ptr[rows]], dist[rows, ptr[rows]]
        order = np.lexsort((d, c))  # by cluster, then distance
        rows, c = rows[order], c[order]
        first = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
        rank = np.arange(len(c)) - np.repeat(first, np.diff(np.r_[first, len(c)]))
        take = rank < (cap - load[c])
        out[rows[take]] = c[take]
        load += np.bincount(c[take], minlength=k)
        ptr[rows[~take]] += 1
    for row in np.flatnonzero(out < 0):  # rare: every candidate filled up
        d = ((cents - x[row]) ** 2).sum(1)
        d[load >= cap] = np.inf
        out[row] = int(d.argmin())
        load[out[row]] += 1
    return out


def fit(x: np.ndarray, *, levels: int, codebook_size: int, seed: int, niter: int = 25,
        balance_iters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(codebooks [L, K, d], the training items' codes [N, L]), every code holding ≤ ceil(N / K) items."""
    residual = np.array(x, dtype=np.float32, copy=True)
    cap = math.ceil(len(residual) / codebook_size)
    books, codes = [], np.empty((len(residual), levels), dtype=np.int64)
    for level in range(levels):
        book = kmeans(residual, codebook_size, seed=seed + level, niter=niter)
        for _ in range(balance_iters):
            a = balanced_assign(residual, book, cap)
            sums = np.zeros_like(book)
            np.add.at(sums, a, residual)
            counts = np.bincount(a, minlength=codebook_size)
            used = counts > 0
            book[used] = sums[used] / counts[used, None]
        a = balanced_assign(residual, book, cap)
        codes[:, level] = a
        residual -= book[a]
        books.append(book)
    return np.stack(books), codes


class BalancedKMeansCodec(KMeansCodec):
    """Nearest-code assignment for new items, over the balanced codebooks."""


def fit_codec(x: np.ndarray, cfg: IdsConfig) -> tuple[Codec, np.ndarray, list]:
    books, codes = fit(x, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed, niter=cfg.kmeans_iters,
                       balance_iters=cfg.balance_iters)
    codec = BalancedKMeansCodec("rqkmeans_balanced", x.shape[1], cfg.levels, cfg.codebook_size, cfg.seed, books)
    return codec, codes, []
