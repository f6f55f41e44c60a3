"""RQ-KMeans: residual k-means, one faiss k-means per level on what the previous levels left.

GRID (Snap, "Generative Recommendation with Semantic IDs: A Practitioner's Handbook", CIKM 2025)
found it as good as RQ-VAE at a fraction of the training time. Also used for the RQ-VAE's codebook
initialisation (TIGER initialises codebooks by k-means).

    books = fit(x, levels=3, codebook_size=256, seed=0)   # [L, K, d] float32
    codes = assign(x, books)                              # [N, L] int64
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faiss
import numpy as np

from semid.ids.codec import Codec

if TYPE_CHECKING:
    from semid.ids.config import IdsConfig

CHUNK = 65536


def kmeans(x: np.ndarray, k: int, *, seed: int, niter: int = 25) -> np.ndarray:
    """k centroids of ``x`` (faiss). With fewer distinct points than k, the spare centroids are
    copies of random points plus a little noise, so every code still has a vector."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if n == 0:
        raise ValueError("k-means needs at least one point")
    rng = np.random.default_rng(seed)
    k_fit = min(k, n)
    if k_fit == 1:
        cents = x.mean(0, keepdims=True)
    else:
        km = faiss.Kmeans(d, k_fit, niter=niter, seed=seed, verbose=False, spherical=False,
                          max_points_per_centroid=max(256, n // k_fit + 1), min_points_per_centroid=1)
        km.train(x)
        cents = km.centroids.copy()
    if k_fit < k:
        scale = float(x.std()) * 1e-2 + 1e-6
        extra = x[rng.integers(0, n, k - k_fit)] + rng.normal(0, scale, (k - k_fit, d)).astype(np.float32)
        cents = np.concatenate([cents, extra])
    return np.ascontiguousarray(cents, dtype=np.float32)


def nearest(x: np.ndarray, book: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``book`` for each row of ``x`` (squared L2, chunked BLAS)."""
    out = np.empty(len(x), dtype=np.int64)
    book_sq = (book.astype(np.float32) ** 2).sum(1)
    for s in range(0, len(x), CHUNK):
        xb = x[s:s + CHUNK]
        out[s:s + CHUNK] = (book_sq[None, :] - 2 * xb @ book.T).argmin(1)
    return out


def fit(x: np.ndarray, *, levels: int, codebook_size: int, seed: int, niter: int = 25) -> np.ndarray:
    residual = np.array(x, dtype=np.float32, copy=True)
    books = []
    for level in range(levels):
        book = kmeans(residual, codebook_size, seed=seed + level, niter=niter)
        residual -= book[nearest(residual, book)]
        books.append(book)
    return np.stack(books)


def assign(x: np.ndarray, books: np.ndarray) -> np.ndarray:
    residual = np.array(x, dtype=np.float32, copy=True)
    codes = np.empty((len(x), len(books)), dtype=np.int64)
    for level, book in enumerate(books):
        codes[:, level] = nearest(residual, book)
        residual -= book[codes[:, level]]
    return codes


class KMeansCodec(Codec):
    def assign(self, x: np.ndarray) -> np.ndarray:
        return assign(x, self.codebooks)


def fit_codec(x: np.ndarray, cfg: IdsConfig) -> tuple[Codec, np.ndarray, list]:
    books = fit(x, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed, niter=cfg.kmeans_iters)
    codec = KMeansCodec("rqkmeans", x.shape[1], cfg.levels, cfg.codebook_size, cfg.seed, books)
    return codec, codec.codes(x), []
