"""Semantic KNN baseline: the items whose text embeddings are nearest (cosine) to the user's
recent items.

The query of a user is ``Σ_k decay**k · e[h[-1 - k]]`` over the last ``max_items`` history items
(``e`` the L2-normalised item embeddings); the score of an item is ``e[i] · q``, computed for
the whole catalogue with one matmul per batch of users.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from semid.checkpoints import save_weights
from semid.core.config import ModelConfig
from semid.core.errors import DataError
from semid.core.run import RunFolder, read_model_folder
from semid.models.common import RankOptions, batched_ranker
from semid.models.pop import summary


class KNNConfig(ModelConfig):
    """Items nearest (cosine) to a recency-weighted sum of the last items' text embeddings."""

    name: str = "knn"
    max_items: int = Field(2, ge=1, description="history items in the query (the most recent)")
    decay: float = Field(0.3, gt=0, le=1, description="weight of an item k steps back = decay**k")
    exclude_history: bool = Field(False, description="drop the user's history items from the list (off: as every model here)")


def normalise(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norm, 1e-12)


def recency_weights(max_items: int, decay: float) -> np.ndarray:
    """Weight of the item ``k`` steps back, ``k < max_items``: ``decay**k``."""
    return (decay ** np.arange(max_items)).astype(np.float32)


def queries(hists: list[np.ndarray], emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Recency-weighted sums of the last items' (normalised) embeddings → ``[U, d]``."""
    n = len(weights)
    idx = np.full((len(hists), n), -1, dtype=np.int64)
    for u, h in enumerate(hists):
        recent = np.asarray(h[-n:], dtype=np.int64)[::-1]  # most recent first
        idx[u, :len(recent)] = recent
    weights = weights.to(emb.device, emb.dtype)
    idx_t = torch.as_tensor(idx, device=emb.device)
    vecs = emb[idx_t.clamp(min=0)] * (idx_t >= 0).unsqueeze(-1).to(emb.dtype)
    return (vecs * weights[None, :, None]).sum(1)


def rank(hists: list[np.ndarray], emb: torch.Tensor, top_k: int, weights: torch.Tensor,
         exclude_history: bool = False, with_scores: bool = False):
    """Top ``top_k`` items of each history, best first → ``[U, top_k]`` (and their scores)."""
    score = queries(hists, emb, weights) @ emb.T
    if exclude_history:
        for u, h in enumerate(hists):
            score[u, torch.as_tensor(np.asarray(h, dtype=np.int64), device=emb.device)] = float("-inf")
    best = torch.topk(score, min(top_k, emb.shape[0]), dim=1)
    return (best.indices, best.values) if with_scores else best.indices


def train(cfg: KNNConfig, run: RunFolder, out: Path, **_: Any) -> dict[str, Any]:
    """Index the normalised embeddings, with the query settings (evaluation reuses by weights)."""
    t0 = time.perf_counter()
    n_items = run.table("items").height
    emb = np.load(run.need(run.embeddings, "semid embed"))
    if emb.ndim != 2 or emb.shape[0] != n_items:
        raise DataError(f"embeddings of shape {emb.shape} do not match the run's {n_items} items", path=run.embeddings)
    save_weights({"embeddings": torch.from_numpy(normalise(emb)),
                  "recency_weights": torch.from_numpy(recency_weights(cfg.max_items, cfg.decay)),
                  "exclude_history": torch.tensor([cfg.exclude_history])}, out)
    return {"params": 0, "training": summary(t0)}


def ranker(folder: Path, config: type[KNNConfig], opts: RankOptions):
    _, weights = read_model_folder(folder)
    emb, recency = weights["embeddings"].to(opts.device), weights["recency_weights"]
    exclude = bool(weights["exclude_history"].item())

    def top(hists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        idx, val = rank(hists, emb, opts.top_k, recency, exclude, with_scores=True)
        return idx.cpu().numpy(), val.float().cpu().numpy()

    return batched_ranker(top, opts, score_kind="similarity"), {"max_items": len(recency)}
