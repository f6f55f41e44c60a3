"""Semantic KNN baseline: the items whose text embeddings are nearest (cosine) to the user's
recent items.

The query of a user is ``Σ_k decay**k · e[h[-1 - k]]`` over the last ``last_n`` history items
(``e`` the L2-normalised item embeddings); the score of an item is ``e[i] · q``, computed for
the whole catalogue with one matmul per batch of users.
"""

from __future__ import annotations

import numpy as np
import torch


def normalise(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norm, 1e-12)


def recency_weights(last_n: int, decay: float) -> np.ndarray:
    """Weight of the item ``k`` steps back, ``k < last_n``: ``decay**k``."""
    return (decay ** np.arange(last_n)).astype(np.float32)


def queries(hists: list[np.ndarray], emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Recency-weighted sums of the last items' (normalised) embeddings → ``[U, d]``."""
    last_n = len(weights)
    idx = np.full((len(hists), last_n), -1, dtype=np.int64)
    for u, h in enumerate(hists):
        recent = np.asarray(h[-last_n:], dtype=np.int64)[::-1]  # most recent first
        idx[u, :len(recent)] = recent
    weights = weights.to(emb.device, emb.dtype)
    idx_t = torch.as_tensor(idx, device=emb.device)
    vecs = emb[idx_t.clamp(min=0)] * (idx_t >= 0).unsqueeze(-1).to(emb.dtype)
    return (vecs * weights[None, :, None]).sum(1)


def rank(hists: list[np.ndarray], emb: torch.Tensor, top_k: int, weights: torch.Tensor,
         exclude_history: bool = False) -> torch.Tensor:
    """Top ``top_k`` items of each history, best first → ``[U, top_k]``."""
    score = queries(hists, emb, weights) @ emb.T
    if exclude_history:
        for u, h in enumerate(hists):
            score[u, torch.as_tensor(np.asarray(h, dtype=np.int64), device=emb.device)] = float("-inf")
    return torch.topk(score, min(top_k, emb.shape[0]), dim=1).indices
