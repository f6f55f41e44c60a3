"""Training SASRec, GRU4Rec and BERT4Rec on :class:`semid.training.SemidModule`: validation
Recall@10 by full-catalogue scoring of a fixed sample of validation users.

The losses (full softmax, sampled softmax with ``negatives=N``, SASRec's BCE) are in
:mod:`semid.models.seqrec.losses`; only positions with a target reach them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid import checkpoints, training
from semid.core.log import log
from semid.core.run import RunFolder
from semid.models.seqrec.config import SeqRecConfig
from semid.models.seqrec.data import history_batch, train_batches
from semid.models.seqrec.losses import ItemSampler, sequence_loss
from semid.models.seqrec.model import ModelArgs, num_params, top_items
from semid.sequences import IGNORE, EvalBatches, eval_histories, sequences

BATCH_USERS = 512  # validation users per batch


def model_args(cfg: SeqRecConfig, n_items: int) -> ModelArgs:
    return ModelArgs(n_items=n_items, d_model=cfg.d_model, layers=cfg.layers, heads=cfg.n_heads, dropout=cfg.dropout,
                     max_len=cfg.max_items)


class SeqRecModule(training.SemidModule):
    def __init__(self, cfg: SeqRecConfig, args: ModelArgs, sampler: ItemSampler | None = None):
        super().__init__(cfg, {"args": args.to_dict(), "loss": cfg.loss_name})
        self.loss = cfg.loss_name
        self.model = cfg.network(args)
        self.sampler = sampler  # the sampled softmax's negatives (negatives=N), else None

    def decays(self, name: str, p: torch.nn.Parameter) -> bool:
        return True  # the item-ID models decay every parameter (weight_decay is 0 by default)

    def step_loss(self, batch: dict[str, torch.Tensor]):
        loss = sequence_loss(self.model, batch["x"], batch["y"], self.loss, self.sampler)
        return loss, int((batch["y"] != IGNORE).sum()), {}

    def top10(self, hist: tuple[torch.Tensor, torch.Tensor], users: torch.Tensor) -> torch.Tensor:
        x, last = hist
        h = self.model(x)[torch.arange(len(x), device=x.device), last]
        return top_items(self.model, h, 10)[1]


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
    sampler = None
    if cfg.negatives:
        counts = np.bincount(np.concatenate(seqs), minlength=n_items) if cfg.sampler == "popularity" else None
        sampler = ItemSampler(n_items, cfg.negatives, counts)
    module = SeqRecModule(cfg, args, sampler)
    log.info("%s: %d training rows (%d targets) in %d batches per epoch; %d parameters; loss %s%s",
             cfg.name, len(train_data.rows), train_data.num_targets, len(train_data), num_params(module.model),
             module.loss, f" (sampled softmax: {cfg.negatives} {cfg.sampler} negatives per batch)" if cfg.negatives else "")
    summary = training.fit(module, train_data, val, cfg, out, resume=resume, name=cfg.name)
    _, state = checkpoints.checkpoint_state(Path(summary["best_checkpoint"]))
    checkpoints.save_weights(state, out)
    return {"args": args.to_dict(), "loss": cfg.loss_name, "params": num_params(module.model),
            "training": summary | {"val_users": len(pick), "train_targets_per_epoch": train_data.num_targets}}
