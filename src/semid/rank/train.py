"""Training loop of the ranker: BCE on observed events vs sampled negatives, Adam, early stop.

A small plain loop (one CPU thread trains a cell of the study in tens of seconds; Lightning's
per-step overhead would dominate). Each epoch redraws the negatives; after each epoch the
validation lists are scored and the weights with the best pooled validation AUC are kept.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from semid.core.log import log, progress
from semid.rank import data as D
from semid.rank import metrics as RM
from semid.rank.config import RankConfig
from semid.rank.model import Ranker


@torch.no_grad()
def score(model: Ranker, lists: D.Lists, batch_users: int = 512) -> np.ndarray:
    """Logits [U, 1 + N] of every candidate list."""
    model.eval()
    out = np.empty(lists.candidates.shape, dtype=np.float32)
    for a in range(0, len(lists), batch_users):
        h = torch.from_numpy(lists.history[a:a + batch_users])
        c = torch.from_numpy(lists.candidates[a:a + batch_users])
        out[a:a + batch_users] = model(h, c).numpy()
    return out


def fit(model: Ranker, cfg: RankConfig, data: D.RankData) -> list[dict[str, Any]]:
    """Train ``model`` in place (ends with the best validation weights); returns the curve."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    hist_all = torch.from_numpy(data.train.history)
    curve: list[dict[str, Any]] = []
    best, best_state, bad = -1.0, None, 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        event, item, label = D.training_examples(data.train, data.counts, cfg.neg_ratio, cfg.neg_sampling,
                                                   cfg.neg_alpha, rng)
        event_t, item_t, label_t = torch.from_numpy(event), torch.from_numpy(item), torch.from_numpy(label)
        model.train()
        total, steps = 0.0, 0
        bar = progress(range(0, len(event), cfg.batch_size), desc=f"rank {cfg.representation} epoch {epoch + 1}",
                       unit="batch")
        for a in bar:
            sl = slice(a, a + cfg.batch_size)
            logits = model(hist_all[event_t[sl]], item_t[sl, None]).squeeze(1)
            loss = loss_fn(logits, label_t[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        val = RM.list_metrics(score(model, data.val))
        point = {"epoch": epoch + 1, "train_loss": total / max(steps, 1), "val_auc": val["auc"],
                 "val_ndcg@10": val["ndcg@10"], "epoch_s": round(time.perf_counter() - t0, 2)}
        curve.append(point)
        log.debug("rank %s T=%d epoch %d: loss %.4f, val AUC %.4f (%.1f s)", cfg.representation, cfg.table_size,
                  epoch + 1, point["train_loss"], val["auc"], point["epoch_s"])
        if val["auc"] > best:
            best, bad = val["auc"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad > cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return curve
