"""Random IDs: the same L × K shape with uniformly random codes (the ablation in TIGER, Rajput et al. 2023).

The "codebooks" are the mean residual of the items given each code, level by level, so the
analysis can report how well a random grouping reconstructs the embeddings (a floor for the
other methods). Every item's codes come from a generator seeded by the run seed and the item's
embedding bytes (and its rank among identical vectors): assignment is deterministic and the same
for the catalogue and for new items, yet says nothing about content.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from semid.ids.codec import Codec

if TYPE_CHECKING:
    from semid.ids.config import IdsConfig


def residual_means(x: np.ndarray, codes: np.ndarray, codebook_size: int) -> np.ndarray:
    residual = np.array(x, dtype=np.float32, copy=True)
    books = np.zeros((codes.shape[1], codebook_size, x.shape[1]), dtype=np.float32)
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size).astype(np.float32)
        np.add.at(books[level], codes[:, level], residual)
        books[level] /= np.maximum(counts, 1)[:, None]
        residual -= books[level][codes[:, level]]
    return books


def assign(x: np.ndarray, *, levels: int, codebook_size: int, seed: int) -> np.ndarray:
    """Uniform codes per row, from a generator seeded by (seed, the row's bytes, how many identical
    rows came before it): duplicates of one vector still get independent codes, as random IDs should."""
    codes = np.empty((len(x), levels), dtype=np.int64)
    seen: dict[bytes, int] = {}
    for i, row in enumerate(np.ascontiguousarray(x, dtype=np.float32)):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8).digest()
        rank = seen.get(digest, 0)
        seen[digest] = rank + 1
        rng = np.random.default_rng([seed, int.from_bytes(digest, "little"), rank])
        codes[i] = rng.integers(0, codebook_size, size=levels)
    return codes


class RandomCodec(Codec):
    def assign(self, x: np.ndarray) -> np.ndarray:
        return assign(x, levels=self.levels, codebook_size=self.codebook_size, seed=self.seed)


def fit_codec(x: np.ndarray, cfg: IdsConfig) -> tuple[Codec, np.ndarray, list]:
    codes = assign(x, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed)
    books = residual_means(x, codes, cfg.codebook_size)
    return RandomCodec("random", x.shape[1], cfg.levels, cfg.codebook_size, cfg.seed, books), codes, []
