"""Training SASRec, GRU4Rec and BERT4Rec on :class:`semid.training.SemidModule`: validation
Recall@10 by full-catalogue scoring of a fixed sample of validation users.

Losses: ``ce`` is softmax cross-entropy over the whole catalogue, computed only at positions with
a target (padding never reaches the matmul); ``bce`` (SASRec's paper) is binary cross-entropy of
the target against one negative item per position, drawn uniformly from the items other than the
target (:func:`sample_negatives`); BERT4Rec's cloze loss is ``ce`` at the masked positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from semid import training
from semid.core.log import log
from semid.core.run import RunFolder
from semid.models.seqrec.config import SeqRecConfig
from semid.models.seqrec.data import history_batch, train_batches
from semid.models.seqrec.model import ModelArgs, num_params, scores
from semid.sequences import IGNORE, EvalBatches, eval_histories, sequences

BATCH_USERS = 512  # validation users per batch


def model_args(cfg: SeqRecConfig, n_items: int) -> ModelArgs:
    return ModelArgs(n_items=n_items, d_model=cfg.d_model, layers=cfg.layers, heads=cfg.n_heads, dropout=cfg.dropout,
                     max_len=cfg.max_items)


def sample_negatives(target: torch.Tensor, n_items: int) -> torch.Tensor:
    """One negative per target, uniform over the ``n_items - 1`` items other than the target.

    The target shifted by a random offset in ``[1, n_items - 1]`` modulo ``n_items``: never the
    target itself, never padding (ids are the 0-based item ids of ``item_weights()``), one
    ``randint`` call on the global torch generator (seeded, and saved in checkpoints).
    """
    if n_items < 2:
        raise ValueError(f"the BCE loss needs at least 2 items to draw a negative from, got {n_items}")
    offset = torch.randint(1, n_items, target.shape, device=target.device)
    return (target + offset) % n_items


def sequence_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss over the positions of ``y`` that hold a target."""
    h = model(x)
    keep = y != IGNORE
    h, target = h[keep], y[keep]
    if loss == "bce":
        w = model.item_weights()
        neg = sample_negatives(target, w.shape[0])
        pos_logit = (h * w[target]).sum(-1)
        neg_logit = (h * w[neg]).sum(-1)
        return (F.binary_cross_entropy_with_logits(pos_logit.float(), torch.ones_like(pos_logit, dtype=torch.float))
                + F.binary_cross_entropy_with_logits(neg_logit.float(), torch.zeros_like(neg_logit, dtype=torch.float)))
    return F.cross_entropy(scores(model, h).float(), target)


class SeqRecModule(training.SemidModule):
    def __init__(self, cfg: SeqRecConfig, args: ModelArgs):
        super().__init__(cfg, {"args": args.to_dict(), "loss": cfg.loss_name})
        self.loss = cfg.loss_name
        self.model = cfg.network(args)

    def decays(self, name: str, p: torch.nn.Parameter) -> bool:
        return True  # the item-ID models decay every parameter (weight_decay is 0 by default)

    def step_loss(self, batch: dict[str, torch.Tensor]):
        loss = sequence_loss(self.model, batch["x"], batch["y"], self.loss)
        return loss, int((batch["y"] != IGNORE).sum()), {}

    def top10(self, hist: tuple[torch.Tensor, torch.Tensor], users: torch.Tensor) -> torch.Tensor:
        x, last = hist
        h = self.model(x)[torch.arange(len(x), device=x.device), last]
        return torch.topk(scores(self.model, h).float(), 10, dim=1).indices


def train(cfg: SeqRecConfig, run: RunFolder, out: Path, *, resume: bool = False, **_: Any) -> dict[str, Any]:
    """Train into ``out`` (checkpoints/, logs/, model.safetensors); returns what goes into config.json."""
    n_items = run.table("items").height
    seqs = sequences(run.table("train"))
    hist, targets, users = eval_histories(run.table("val"))
    training.setup(cfg)
    args = model_args(cfg, n_items)
    cloze = cfg.loss_name == "cloze"
    mask_token = n_items + 1 if cloze else None
    train_data = train_batches(seqs, cloze=cloze, max_items=cfg.max_items, batch_size=cfg.batch_size, seed=cfg.seed,
                               mask_token=n_items + 1, mask_prob=getattr(cfg, "mask_prob", 0.0),
                               last_mask_share=getattr(cfg, "last_mask_share", 0.0))
    pick = training.val_sample(len(hist), cfg.val_users)
    val = EvalBatches([hist[i] for i in pick], targets[pick], users[pick],
                      lambda h: history_batch(h, cfg.max_items, mask_token), BATCH_USERS)
    module = SeqRecModule(cfg, args)
    log.info("%s: %d training rows (%d targets) in %d batches per epoch; %d parameters; loss %s",
             cfg.name, len(train_data.rows), train_data.num_targets, len(train_data), num_params(module.model),
             module.loss)
    summary = training.fit(module, train_data, val, cfg, out, resume=resume, name=cfg.name)
    _, state = training.checkpoint_state(Path(summary["best_checkpoint"]))
    training.save_weights(state, out)
    return {"args": args.to_dict(), "loss": cfg.loss_name, "params": num_params(module.model),
            "training": summary | {"val_users": len(pick), "train_targets_per_epoch": train_data.num_targets}}
