"""What every model family shares: ranking options and the batched ranker.

A *ranker* is ``rank(histories, users) -> (items [U, top_k], invalid [U, top_k] | None)``: the
one protocol :mod:`semid.evaluate.stage` scores, whatever the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Ranker = Callable[[list, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class RankOptions:
    """How to rank: list length, decoding settings of generative models, cold-start cap, device."""

    top_k: int = 20
    beam_size: int = 20
    constrained: bool = True
    cold_items: np.ndarray | None = None  # bool [N]: items unseen in training
    cold_start_eps: float | None = None
    batch_users: int = 256
    device: str = "cpu"


def batched_ranker(top: Callable[[list[np.ndarray]], np.ndarray], opts: RankOptions) -> Ranker:
    """A ranker from ``top(histories) -> items [B, <= top_k]``: users in length-sorted batches."""

    @torch.no_grad()
    def rank(histories: list, users: np.ndarray) -> tuple[np.ndarray, None]:
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        order = np.argsort([len(h) for h in hist], kind="stable")
        items = np.full((len(hist), opts.top_k), -1, dtype=np.int64)
        for a in range(0, len(order), opts.batch_users):
            idx = order[a:a + opts.batch_users]
            got = top([hist[i] for i in idx])
            items[idx, :got.shape[1]] = got
        return items, None

    return rank
