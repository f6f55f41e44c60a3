"""Top-K metrics on ranked lists, one held-out target per user (pure numpy).

Inputs: ``ranked`` int [U, K] item ids best first (-1 = empty slot or an invalid generated ID)
and ``targets`` int [U]. With one target per user, Recall@K equals HR@K.

- ``recall@k``: share of users whose target is in their top k.
- ``ndcg@k``: mean of ``1 / log2(rank + 2)`` for a target at 0-based ``rank < k`` (IDCG = 1).
- ``mrr``: mean of ``1 / (rank + 1)``, 0 when the target is not in the list (so it is MRR@K
  for the list length K that was evaluated).
- ``coverage@k``: distinct items in all top-k lists / catalogue size.
- ``invalid_rate@k``: share of top-k slots holding an invalid generated ID (generative models).
"""

from __future__ import annotations

import numpy as np

KS = (5, 10, 20)


def ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each user's target in their list; -1 when it is absent."""
    ranked = np.asarray(ranked)
    hit = (ranked == np.asarray(targets)[:, None]) & (ranked >= 0)
    return np.where(hit.any(1), hit.argmax(1), -1)


def _found(r: np.ndarray, k: int) -> np.ndarray:
    return (r >= 0) & (r < k)


def recall_per_user(r: np.ndarray, k: int) -> np.ndarray:
    return _found(r, k).astype(np.float64)


def ndcg_per_user(r: np.ndarray, k: int) -> np.ndarray:
    return np.where(_found(r, k), 1.0 / np.log2(np.clip(r, 0, None) + 2.0), 0.0)


def rr_per_user(r: np.ndarray) -> np.ndarray:
    return np.where(r >= 0, 1.0 / (np.clip(r, 0, None) + 1.0), 0.0)


def recall_at(r: np.ndarray, k: int) -> float:
    return float(recall_per_user(r, k).mean()) if len(r) else 0.0


def ndcg_at(r: np.ndarray, k: int) -> float:
    return float(ndcg_per_user(r, k).mean()) if len(r) else 0.0


def mrr(r: np.ndarray) -> float:
    return float(rr_per_user(r).mean()) if len(r) else 0.0


def coverage_at(ranked: np.ndarray, k: int, num_items: int) -> float:
    top = np.asarray(ranked)[:, :k]
    return float(len(np.unique(top[top >= 0])) / num_items) if num_items else 0.0


def per_user(ranked: np.ndarray, targets: np.ndarray, ks=KS) -> dict[str, np.ndarray]:
    """Per-user values of every user-averaged metric (what the bootstrap resamples)."""
    r = ranks(ranked, targets)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_per_user(r, k)
        out[f"ndcg@{k}"] = ndcg_per_user(r, k)
    out["mrr"] = rr_per_user(r)
    return out


def compute(ranked: np.ndarray, targets: np.ndarray, num_items: int, ks=KS,
            invalid: np.ndarray | None = None) -> dict[str, float]:
    """Every metric: ``recall@k``, ``ndcg@k``, ``mrr``, ``coverage@k`` and, when ``invalid``
    (bool [U, K]: slot holds an invalid generated ID) is given, ``invalid_rate@k``."""
    ranked = np.asarray(ranked)
    if ranked.shape[1] < max(ks):
        raise ValueError(f"ranked lists hold {ranked.shape[1]} items; metrics need {max(ks)}")
    out = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user(ranked, targets, ks).items()}
    for k in ks:
        out[f"coverage@{k}"] = coverage_at(ranked, k, num_items)
        if invalid is not None:
            out[f"invalid_rate@{k}"] = float(np.asarray(invalid)[:, :k].mean()) if len(ranked) else 0.0
    return dict(sorted(out.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> tuple[int, int]:
    base, _, k = name.partition("@")
    rank = ["recall", "ndcg", "mrr", "coverage", "invalid_rate"].index(base)
    return rank, int(k or 0)
