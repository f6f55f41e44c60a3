"""Paired statistics for comparing two models on the same users (or events), over seeds.

A model's result is a matrix ``[seeds, users]`` of per-user values (Recall@10 hits, NDCG@10
gains, per-list AUC, …); two models are compared on the same users, column by column.

- :func:`paired_bootstrap`: the Δ of the means and its percentile CI, each replicate drawing the
  users once for both models (paired) and each model's seeds with replacement (so seed variance
  widens the interval; ``paired_seeds``: the same seed draws for both, where the two rows are the
  same trained networks scored two ways); its two-sided p-value is twice the smaller tail share
  around 0, and ``p_seeds`` is the normal p of Δ over the replicates' standard error (it can be
  far smaller than 1 / resamples, so it survives a Holm correction over many tests).
- :func:`paired_permutation`: the sign-flip test on the per-user differences of seed means: under
  "no difference" each user's two values are exchangeable. Exact for a handful of users,
  Monte Carlo otherwise, with the (1 + hits) / (1 + draws) estimate that is never 0.
- :func:`holm`: Holm's step-down adjustment of a family of p-values.
- :func:`compare`: both, and ``p_test``, the larger of the permutation p and ``p_seeds``: the p that
  is Holm-corrected. The permutation test treats the trained networks as given; ``p_seeds`` also
  counts how much training seeds differ, so a verdict holds for the training recipe, not only for
  these networks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _matrix(x: Any) -> np.ndarray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"expected per-seed per-user values [seeds, users], got shape {m.shape}")
    return m


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _matrix(a), _matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired values must cover the same users: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[1] == 0:
        raise ValueError("no users to compare")
    return a, b


def paired_bootstrap(a: Any, b: Any, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                     chunk: int = 50, paired_seeds: bool = False) -> dict[str, Any]:
    """``{"delta", "ci95", "p_bootstrap", "se", "p_seeds"}`` of mean(a) − mean(b) over seeds and users."""
    a, b = _pair(a, b)
    if paired_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"paired seeds need as many seeds on both sides: {a.shape[0]} vs {b.shape[0]}")
    delta = float(a.mean() - b.mean())
    if n_boot <= 0:
        return {"delta": delta, "ci95": None, "p_bootstrap": None, "se": None, "p_seeds": None}
    rng = np.random.default_rng(seed)
    n_users = a.shape[1]
    reps = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        hi = min(n_boot, lo + chunk)
        users = rng.integers(0, n_users, size=(hi - lo, n_users))
        sa = rng.integers(0, a.shape[0], size=(hi - lo, a.shape[0]))
        sb = sa if paired_seeds else rng.integers(0, b.shape[0], size=(hi - lo, b.shape[0]))
        for i in range(hi - lo):
            # seeds drawn with replacement, then the same users for both models
            ma = a[sa[i]].mean(axis=0)[users[i]].mean()
            mb = b[sb[i]].mean(axis=0)[users[i]].mean()
            reps[lo + i] = ma - mb
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    p = min(1.0, 2 * min(float((reps <= 0).mean()), float((reps >= 0).mean())))
    se = float(reps.std(ddof=1)) if n_boot > 1 else 0.0
    p_seeds = normal_p(delta, se)
    return {"delta": delta, "ci95": [float(low), float(high)], "p_bootstrap": p, "se": se, "p_seeds": p_seeds}


def normal_p(delta: float, se: float) -> float:
    """Two-sided normal p of ``delta`` with standard error ``se`` (``se`` 0: 1 for no difference, else 0);
    ``erfc`` keeps small p-values (``1 - cdf`` rounds everything below about 1e-16 to 0)."""
    return math.erfc(abs(delta) / se / math.sqrt(2)) if se > 0 else float(delta == 0)


def format_p(p: float | None, digits: int = 4, resamples: int | None = None) -> str:
    """A p-value for a table: "–" when absent; a p of 0 is a bound, never "0": below 1 / ``resamples``
    for a bootstrap p, below 1e-300 for a normal p that underflowed (z beyond about 38)."""
    if p is None:
        return "–"
    if p == 0:
        return f"<{1 / resamples:.2g}" if resamples else "<1e-300"
    return f"{p:.{digits}g}"


def paired_permutation(a: Any, b: Any, *, n_perm: int = 10000, seed: int = 0, exact_up_to: int = 16) -> float:
    """Two-sided p-value of the sign-flip test on per-user differences of seed means."""
    a, b = _pair(a, b)
    d = a.mean(axis=0) - b.mean(axis=0)
    observed = abs(d.sum())
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    if len(d) <= exact_up_to:  # every sign pattern: the exact p-value
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        return float((np.abs(signs @ d) >= observed - tol).mean())
    nz = d[d != 0]  # a zero difference flips to itself
    if nz.size == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    hits = 0
    for lo in range(0, n_perm, 256):
        n = min(256, n_perm - lo)
        signs = rng.integers(0, 2, size=(n, nz.size), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ nz) >= observed - tol).sum())
    return (1 + hits) / (1 + n_perm)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (None stays None and does not count as a test)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def compare(a: Any, b: Any, *, n_boot: int = 2000, n_perm: int = 10000, seed: int = 0,
            paired_seeds: bool = False) -> dict[str, Any]:
    """Both tests of one pair (before any correction for multiple comparisons); ``p_test``, the p to
    correct, is the larger of the permutation p and the bootstrap's ``p_seeds`` (the permutation p
    alone without a bootstrap)."""
    res = {**paired_bootstrap(a, b, n_boot=n_boot, seed=seed, paired_seeds=paired_seeds),
           "p_permutation": paired_permutation(a, b, n_perm=n_perm, seed=seed)}
    res["p_test"] = res["p_permutation"] if res["p_seeds"] is None else max(res["p_permutation"], res["p_seeds"])
    return res


def verdict(delta: float, ci95: Sequence[float] | None, p_adjusted: float | None, alpha: float = 0.05) -> str:
    """"better" / "worse" only where the adjusted test and the bootstrap CI agree."""
    if p_adjusted is None or ci95 is None:
        return "not tested"
    if p_adjusted < alpha and ci95[0] > 0:
        return "better"
    if p_adjusted < alpha and ci95[1] < 0:
        return "worse"
    return "no significant difference"


__all__ = ["paired_bootstrap", "paired_permutation", "normal_p", "format_p", "holm", "compare", "verdict"]
