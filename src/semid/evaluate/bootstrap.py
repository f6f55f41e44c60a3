"""95% confidence intervals by resampling users with replacement (percentile bootstrap)."""

from __future__ import annotations

import numpy as np


def confidence_intervals(per_user: dict[str, np.ndarray], *, n_boot: int = 1000, level: float = 0.95,
                         seed: int = 0, chunk: int = 50) -> dict[str, list[float]]:
    """``{metric: [low, high]}`` of each user-averaged metric's mean.

    Every metric is resampled with the same user draws, so the intervals are of one bootstrap.
    """
    names = list(per_user)
    if not names or n_boot <= 0:
        return {}
    values = np.stack([np.asarray(per_user[n], dtype=np.float64) for n in names])  # [M, U]
    n_users = values.shape[1]
    if n_users == 0:
        return {n: [0.0, 0.0] for n in names}
    rng = np.random.default_rng(seed)
    means = np.empty((len(names), n_boot))
    for a in range(0, n_boot, chunk):  # chunks keep the index matrix small
        b = min(n_boot, a + chunk)
        idx = rng.integers(0, n_users, size=(b - a, n_users))
        means[:, a:b] = values[:, idx].mean(axis=2)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return {n: [float(lo[i]), float(hi[i])] for i, n in enumerate(names)}
