"""One Lightning loop for SASRec, GRU4Rec and BERT4Rec: length-bucketed batches, validation
Recall@10 by full-catalogue scoring of a fixed sample of validation users, ``last``/``best``
checkpoints, early stopping, resume, a wall-time cap, mixed precision on GPU, CSV metrics.

Losses: ``ce`` is softmax cross-entropy over the whole catalogue, computed only at positions with
a target (padding never reaches the matmul); ``bce`` (SASRec's paper) is binary cross-entropy of
the target against one uniformly sampled negative item per position; BERT4Rec's cloze loss is
``ce`` at the masked positions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from semid import training
from semid.evaluate import metrics as M
from semid.log import log
from semid.seqrec import config as C
from semid.seqrec import models
from semid.seqrec.data import IGNORE, TrainBatches, history_batch

KINDS: dict[type, str] = {C.SASRecConfig: "sasrec", C.GRU4RecConfig: "gru4rec", C.BERT4RecConfig: "bert4rec"}


def model_args(cfg: C.NeuralConfig, n_items: int) -> models.ModelArgs:
    kind = KINDS[type(cfg)]
    d = cfg.hidden if isinstance(cfg, C.GRU4RecConfig) else cfg.d_model
    return models.ModelArgs(kind=kind, n_items=n_items, d_model=d, layers=cfg.layers,
                            heads=getattr(cfg, "heads", 1), dropout=cfg.dropout, max_len=cfg.max_items)


def loss_name(cfg: C.NeuralConfig) -> str:
    return "cloze" if isinstance(cfg, C.BERT4RecConfig) else cfg.loss


def sequence_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss over the positions of ``y`` that hold a target."""
    h = model(x)
    keep = y != IGNORE
    h, target = h[keep], y[keep]
    if loss == "bce":
        w = model.item_weights()
        neg = torch.randint(0, w.shape[0], target.shape, device=y.device)
        pos_logit = (h * w[target]).sum(-1)
        neg_logit = (h * w[neg]).sum(-1)
        return (F.binary_cross_entropy_with_logits(pos_logit.float(), torch.ones_like(pos_logit, dtype=torch.float))
                + F.binary_cross_entropy_with_logits(neg_logit.float(), torch.zeros_like(neg_logit, dtype=torch.float)))
    return F.cross_entropy(models.scores(model, h).float(), target)


class EvalBatches(torch.utils.data.IterableDataset):
    """Validation users in length-sorted batches: (x, position to read, targets)."""

    def __init__(self, hist: list[np.ndarray], targets: np.ndarray, max_items: int, mask_token: int | None,
                 batch_users: int = 512):
        order = np.argsort([len(h) for h in hist], kind="stable")
        self.parts = [order[i:i + batch_users] for i in range(0, len(order), batch_users)]
        self.hist, self.targets, self.max_items, self.mask_token = hist, targets, max_items, mask_token

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self):
        for idx in self.parts:
            x, last = history_batch([self.hist[i] for i in idx], self.max_items, self.mask_token)
            yield x, last, torch.from_numpy(self.targets[idx])


class SeqRecModule(L.LightningModule):
    def __init__(self, cfg: dict[str, Any], args: dict[str, Any], loss: str):
        super().__init__()
        self.save_hyperparameters({"cfg": cfg, "args": args, "loss": loss})
        self.cfg, self.loss = cfg, loss
        self.model = models.build(args)
        self._val: list[np.ndarray] = []
        self._seen, self._t0 = 0, None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = sequence_loss(self.model, batch["x"], batch["y"], self.loss)
        n = int((batch["y"] != IGNORE).sum())
        self._seen += n
        self._t0 = self._t0 or time.perf_counter()
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/targets_per_s", self._seen / max(1e-9, time.perf_counter() - self._t0), prog_bar=True,
                 batch_size=n)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.cfg["lr"], betas=(0.9, 0.98),
                                 weight_decay=self.cfg["weight_decay"])

    def on_train_start(self) -> None:
        training.resume_epoch(self, TrainBatches)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, last, targets = batch
        h = self.model(x)[torch.arange(len(x), device=x.device), last]
        top = torch.topk(models.scores(self.model, h).float(), 10, dim=1).indices
        self._val.append(M.ranks(top.cpu().numpy(), targets.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        training.log_validation(self, self._val)


def fit(cfg: C.NeuralConfig, n_items: int, train_seqs: list[np.ndarray], val: tuple[list[np.ndarray], np.ndarray],
        out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Train into ``out`` (checkpoints/, logs/); returns a summary with the best checkpoint path."""
    training.setup(cfg)
    args = model_args(cfg, n_items)
    cloze = args.kind == "bert4rec"
    mask_token = n_items + 1 if cloze else None
    train = TrainBatches(train_seqs, mode="cloze" if cloze else "causal", max_items=cfg.max_items,
                         batch_size=cfg.batch_size, seed=cfg.seed, mask_token=n_items + 1,
                         mask_prob=getattr(cfg, "mask_prob", 0.0), last_mask_share=getattr(cfg, "last_mask_share", 0.0))
    hist, targets = val
    pick = training.sample(len(hist), cfg.val_users, cfg.seed)
    hist, targets = [hist[i] for i in pick], targets[pick]
    module = SeqRecModule(cfg.model_dump(mode="json"), args.to_dict(), loss_name(cfg))
    log.info("%s: %d training rows (%d targets) in %d batches per epoch; %d parameters; loss %s",
             cfg.name, len(train.rows), train.num_targets, len(train), models.num_params(module.model), module.loss)

    summary = training.fit(module, train, EvalBatches(hist, targets, cfg.max_items, mask_token), cfg, out,
                           resume=resume, name=cfg.name)
    return summary | {"val_users": len(hist), "train_targets_per_epoch": train.num_targets}


def load_checkpoint_weights(path: Path) -> tuple[dict, dict, str, dict[str, torch.Tensor]]:
    """(cfg, model args, loss, model state dict) from a checkpoint of :class:`SeqRecModule`."""
    hp, state = training.checkpoint_state(path)
    return hp["cfg"], hp["args"], hp["loss"], state
