"""Where models fail: pure functions on one row per user (``semid analyze``'s failure analysis).

:func:`analyze` reads a frame with, per user, ``history_len`` (items of the split's history),
``popularity`` (the target's training interactions: its occurrences in the training sequences,
history and target of every train row) and, per model ``m``, ``rank_<m>`` (1-based rank of the
target as ``semid evaluate`` stored it, null = not in the list) and ``prefix_<m>`` (how many
leading Semantic-ID codes the model's top-1 item shares with the target; -1 when the list was empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from semid.evaluate.stage import per_user_metric

# bucket rules (edges are the first value of each bucket after the lowest one)
POPULARITY_EDGES = (1, 5, 10, 20, 50, 100)  # 0 (cold) | 1-4 | 5-9 | 10-19 | 20-49 | 50-99 | 100+
HISTORY_EDGES = (5, 10, 20, 50)  # 1-4 | 5-9 | 10-19 | 20-49 | 50+
RULES = {
    "popularity": "training interactions of the target (occurrences in the training sequences), fixed log-spaced "
                  "buckets 0 | 1-4 | 5-9 | 10-19 | 20-49 | 50-99 | 100+",
    "history_length": "items in the user's history in the split (before a model truncates it): 1-4 | 5-9 | 10-19 | "
                      "20-49 | 50+",
    "cold": "cold = the target never occurs in the training sequences (popularity 0), else warm",
    "shared_prefix": "leading codes of the top-1 item's Semantic ID equal to the target's (0 = different first code)",
}


def labels(edges: Sequence[int], low: int) -> list[str]:
    """Names of the buckets ``[low, e1), [e1, e2), …, [e_last, ∞)``: ``"0"``, ``"1-4"``, …, ``"100+"``."""
    starts = [low, *edges]
    ends = [e - 1 for e in edges]
    return [str(s) if s == e else f"{s}-{e}" for s, e in zip(starts, ends)] + [f"{starts[-1]}+"]


def bucket(values: np.ndarray, edges: Sequence[int], low: int) -> np.ndarray:
    """The bucket name of each value (values below ``low`` join the first bucket)."""
    return np.asarray(labels(edges, low))[np.digitize(np.asarray(values), edges)]


def shared_prefix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Leading codes row ``i`` of ``a`` shares with row ``i`` of ``b`` (both [N, L])."""
    return np.cumprod(np.asarray(a) == np.asarray(b), axis=1).sum(axis=1)


def hits(ranks: pl.Series, k: int) -> np.ndarray:
    """True where the target is in the top ``k`` (1-based ranks, null = miss)."""
    return per_user_metric(ranks, f"recall@{k}") > 0


def outcomes(hit_a: np.ndarray, hit_b: np.ndarray) -> dict[str, int]:
    """Users by (A hit?, B hit?)."""
    return {"a_hit_b_miss": int((hit_a & ~hit_b).sum()), "a_miss_b_hit": int((~hit_a & hit_b).sum()),
            "both_hit": int((hit_a & hit_b).sum()), "both_miss": int((~hit_a & ~hit_b).sum())}


def prefix_distribution(prefix: np.ndarray, miss: np.ndarray, n_codes: int) -> dict[str, Any]:
    """Over the missed users: how many top-1 items share 0, 1, … ``n_codes - 1`` leading codes with
    the target (a top-1 that is the target itself is a hit, so all ``n_codes`` cannot occur)."""
    p = np.asarray(prefix)[miss]
    shared = np.bincount(p[p >= 0], minlength=n_codes)
    return {"misses": int(miss.sum()), "no_prediction": int((p < 0).sum()), "shared": shared.tolist()}


def by_bucket(groups: np.ndarray, order: list[str], ranks: dict[str, pl.Series], k: int) -> list[dict[str, Any]]:
    """Users, Recall@k and NDCG@k of each model in each bucket, in ``order`` (empty buckets left out)."""
    cols = {f"{m}\t{metric}": per_user_metric(r, f"{metric}@{k}") for m, r in ranks.items() for metric in ("recall", "ndcg")}
    df = pl.DataFrame({"bucket": np.asarray(groups, dtype=str), **cols})
    agg = {row["bucket"]: row for row in df.group_by("bucket").agg(pl.len().alias("users"), pl.exclude("bucket").mean()).to_dicts()}
    rows = []
    for name in order:
        if name in agg:
            row = agg[name]
            rows.append({"bucket": name, "users": int(row["users"]),
                         "models": {m: {f"{metric}@{k}": float(row[f"{m}\t{metric}"]) for metric in ("recall", "ndcg")}
                                    for m in ranks}})
    return rows


def analyze(frame: pl.DataFrame, models: list[str], n_codes: int, k: int = 10) -> dict[str, Any]:
    """Hit/miss outcomes of the first two models, each model's top-1 shared prefix on its misses,
    and Recall/NDCG@k overall and by target popularity, history length and cold/warm target."""
    ranks = {m: frame[f"rank_{m}"] for m in models}
    hit = {m: hits(r, k) for m, r in ranks.items()}
    out: dict[str, Any] = {"users": frame.height, "k": k, "models": models, "rules": RULES}
    if len(models) >= 2:
        a, b = models[:2]
        out["outcomes"] = {"a": a, "b": b, **outcomes(hit[a], hit[b])}
    out["top1_shared_prefix_on_misses"] = {m: prefix_distribution(frame[f"prefix_{m}"].to_numpy(), ~hit[m], n_codes)
                                           for m in models}
    pop = frame["popularity"].to_numpy()
    out["overall"] = by_bucket(np.full(frame.height, "all"), ["all"], ranks, k)
    out["by_popularity"] = by_bucket(bucket(pop, POPULARITY_EDGES, 0), labels(POPULARITY_EDGES, 0), ranks, k)
    out["by_history_length"] = by_bucket(bucket(frame["history_len"].to_numpy(), HISTORY_EDGES, 1),
                                         labels(HISTORY_EDGES, 1), ranks, k)
    out["by_cold"] = by_bucket(np.where(pop == 0, "cold", "warm"), ["cold", "warm"], ranks, k)
    return out
