"""What every model family shares: ranking options and the batched ranker.

A *ranker* is ``rank(histories, users) -> (items [U, top_k], invalid [U, top_k] | None)``: the
one protocol :mod:`semid.evaluate.stage` scores, whatever the model. A ranker that also has a
``score_kind`` attribute (what its scores are: "logit", "log-prob", …) accepts ``scores=True`` and
then returns a third array, each listed item's score ``[U, top_k]`` (float32, higher is better; NaN
where nothing is listed); the serving API shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    cold_start_codes: int | None = None  # generative models: leading codes an unseen item shares (unset: L)
    batch_users: int = 256
    device: str = "cpu"


def batched_ranker(top: Callable[[list[np.ndarray]], Any], opts: RankOptions, score_kind: str | None = None) -> Ranker:
    """A ranker from ``top(histories) -> items [B, <= top_k]`` (or ``(items, scores)`` when
    ``score_kind`` names the scores): users in length-sorted batches."""

    @torch.no_grad()
    def rank(histories: list, users: np.ndarray, scores: bool = False) -> tuple:
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        order = np.argsort([len(h) for h in hist], kind="stable")
        items = np.full((len(hist), opts.top_k), -1, dtype=np.int64)
        values = np.full((len(hist), opts.top_k), np.nan, dtype=np.float32)
        for a in range(0, len(order), opts.batch_users):
            idx = order[a:a + opts.batch_users]
            got = top([hist[i] for i in idx])
            got, val = got if isinstance(got, tuple) else (got, None)
            items[idx, :got.shape[1]] = got
            if val is not None:
                values[idx, :got.shape[1]] = val
        return (items, None, values) if scores else (items, None)

    rank.score_kind = score_kind  # type: ignore[attr-defined]
    return rank
