"""Ranking-model metrics: AUC (pooled and per user) and NDCG/Recall@k inside candidate lists.

- ``auc``: the Mann–Whitney statistic over all scored (candidate, label) pairs pooled, ties
  counting one half; equals ``sklearn.metrics.roc_auc_score``.
- ``auc_per_group``: the same inside each group (user), for groups with both labels.
- On lists with the positive in column 0 and ``N`` negatives: per-list AUC = (negatives scored
  below the positive + ½ ties) / N; rank = negatives scored at least as high (ties count
  against the positive); NDCG@k and Recall@k of that rank via :mod:`semid.evaluate.metrics`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from semid.evaluate import metrics as M


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_per_group(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group ids, AUC of each) for the groups holding both a positive and a negative."""
    scores, labels, groups = np.asarray(scores, np.float64), np.asarray(labels).astype(bool), np.asarray(groups)
    order = np.lexsort((scores, groups))
    s, y, g = scores[order], labels[order], groups[order]
    uniq, start, size = np.unique(g, return_index=True, return_counts=True)
    # average rank of each score inside its group (ties share the mean rank)
    key = np.r_[True, (g[1:] != g[:-1]) | (s[1:] != s[:-1])]
    run = np.cumsum(key) - 1
    first = np.flatnonzero(key)
    length = np.diff(np.r_[first, len(s)])
    pos_in_group = np.arange(len(s)) - np.repeat(start, size)
    ranks = pos_in_group[first][run] + (length[run] + 1) / 2.0
    n_pos = np.bincount(np.repeat(np.arange(len(uniq)), size), weights=y, minlength=len(uniq))
    n_neg = size - n_pos
    rank_sum = np.bincount(np.repeat(np.arange(len(uniq)), size), weights=ranks * y, minlength=len(uniq))
    ok = (n_pos > 0) & (n_neg > 0)
    values = (rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2) / (n_pos[ok] * n_neg[ok])
    return uniq[ok], values


def list_ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of the positive (column 0) in each list; ties count against it."""
    scores = np.asarray(scores)
    return (scores[:, 1:] >= scores[:, :1]).sum(1)


def per_list(scores: np.ndarray, ks: tuple[int, ...] = (10,)) -> dict[str, np.ndarray]:
    """Per-list values: ``auc_user`` (the list's AUC), ``ndcg@k``, ``recall@k``."""
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[:, :1], scores[:, 1:]
    out = {"auc_user": ((neg < pos).sum(1) + 0.5 * (neg == pos).sum(1)) / neg.shape[1]}
    r = list_ranks(scores)
    for k in ks:
        out[f"ndcg@{k}"] = M.ndcg_per_user(r, k)
        out[f"recall@{k}"] = M.recall_per_user(r, k)
    return out


def list_metrics(scores: np.ndarray, rows: np.ndarray | None = None, ks: tuple[int, ...] = (10,)) -> dict[str, float]:
    """Pooled ``auc``, mean per-list ``auc_user``, ``ndcg@k``, ``recall@k`` and ``n_events`` of
    the lists ``rows`` (bool mask or indices; all when None)."""
    scores = np.asarray(scores, dtype=np.float64)
    if rows is not None:
        scores = scores[rows]
    if len(scores) == 0:
        return {"auc": float("nan"), "auc_user": float("nan"), **{f"{m}@{k}": float("nan") for k in ks
                                                                   for m in ("ndcg", "recall")}, "n_events": 0}
    labels = np.zeros(scores.shape, dtype=bool)
    labels[:, 0] = True
    out = {"auc": auc(scores, labels)}
    out |= {name: float(v.mean()) for name, v in per_list(scores, ks).items()}
    out["n_events"] = int(len(scores))
    return out
