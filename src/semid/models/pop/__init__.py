"""Most-popular baseline: every user gets the items most frequent in the training sequences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.checkpoints import save_weights
from semid.core.config import ModelConfig
from semid.core.run import RunFolder, read_model_folder
from semid.models.common import RankOptions, batched_ranker
from semid.sequences import sequences


class PopConfig(ModelConfig):
    """Most popular items: counts over every item of the training sequences."""

    name: str = "pop"


def counts(train_seqs: list[np.ndarray], n_items: int) -> np.ndarray:
    """How often each item occurs in the training sequences (history + target of train rows)."""
    if not train_seqs:
        return np.zeros(n_items, dtype=np.int64)
    return np.bincount(np.concatenate(train_seqs), minlength=n_items).astype(np.int64)


def top_items(count: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` most frequent items, ties broken by the smaller item id."""
    order = np.lexsort((np.arange(len(count)), -count))
    return order[:k].astype(np.int64)


def train(cfg: PopConfig, run: RunFolder, out: Path, **_: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    seqs = sequences(run.table("train"))
    save_weights({"counts": torch.from_numpy(counts(seqs, run.table("items").height))}, out)
    return {"params": 0, "training": summary(t0)}


def summary(t0: float) -> dict[str, Any]:
    """The training summary of a model that has nothing to train."""
    return {"train_wall_s": round(time.perf_counter() - t0, 1), "epochs": 0, "best_val_recall@10": None}


def ranker(folder: Path, config: type[PopConfig], opts: RankOptions):
    _, weights = read_model_folder(folder)
    count = weights["counts"].numpy()
    best = top_items(count, opts.top_k)
    value = count[best].astype(np.float32)
    top = lambda hists: (np.broadcast_to(best, (len(hists), len(best))), np.broadcast_to(value, (len(hists), len(best))))
    return batched_ranker(top, opts, score_kind="training count"), {"max_items": None}
