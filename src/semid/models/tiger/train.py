"""Training TIGER on :class:`semid.generative.module.SIDModule`: sliding-window batches,
next-ID cross-entropy, validation Recall@10 by constrained beam search. The same code runs on CPU
and on one GPU (``accelerator=auto``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semid import checkpoints, training
from semid.core.log import log
from semid.core.run import RunFolder
from semid.generative.folder import resolve_ids, sid_data, write_folder
from semid.generative.module import SIDModule
from semid.generative.tokens import SIDTokenizer, history_tokens
from semid.models.tiger.config import TigerConfig
from semid.models.tiger.data import Batch, train_batches
from semid.models.tiger.model import ModelArgs, Tiger
from semid.sequences import IGNORE, EvalBatches


def model_args(cfg: TigerConfig, tok: SIDTokenizer) -> ModelArgs:
    return ModelArgs(vocab_size=tok.vocab_size, id_length=tok.id_length,
                     level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                     d_model=cfg.d_model, n_heads=cfg.n_heads, head_dim=cfg.head_dim, d_ff=cfg.d_ff,
                     encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers, dropout=cfg.dropout,
                     attn_dropout=cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout,
                     max_items=cfg.max_items, encoder_mask=cfg.encoder_mask, user_buckets=cfg.user_buckets,
                     recency_bias=cfg.recency_bias, positions=cfg.positions,
                     encoder_input=cfg.encoder_input)


class TigerModule(SIDModule):
    def __init__(self, cfg: TigerConfig, args: ModelArgs, tokenizer: SIDTokenizer | None, total_steps: int = 1):
        super().__init__(cfg, {"args": args.to_dict()}, tokenizer, total_steps)
        self.model = Tiger(args)

    def decays(self, name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2 and "tok" not in name.split(".")[0]

    def step_loss(self, batch: Batch):
        logits = self.model(batch.enc, batch.dec_in, batch.limit, batch.users).float()
        eps = self.cfg.label_smoothing
        if not eps:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=IGNORE)
            return loss, batch.num_targets, {}
        # smoothing over the position's own level: the level bias makes every other token -inf
        keep = batch.labels != IGNORE
        logp = torch.log_softmax(logits[keep], -1)
        on_level = torch.isfinite(logp)
        true = -logp.gather(1, batch.labels[keep][:, None]).squeeze(1)
        spread = -torch.where(on_level, logp, 0.0).sum(1) / on_level.sum(1)
        return ((1 - eps) * true + eps * spread).mean(), batch.num_targets, {}

    def start(self, hist: torch.Tensor, users: torch.Tensor):
        return self.model.start(hist, users if self.cfg.user_buckets else None)


def train(cfg: TigerConfig, run: RunFolder, out: Path, *, resume: bool = False, ids: Path | None = None,
          **_: Any) -> dict[str, Any]:
    """Train into ``out``; returns what goes into config.json (weights and ID table written)."""
    ids_folder = resolve_ids(run, cfg.ids, ids)
    d = sid_data(run, ids_folder, cfg.max_items)
    tok = d.tokenizer
    log.info("tiger: %s IDs (%d levels × %d + dedup %d), %d items; preset %s, encoder %s", ids_folder.name,
             tok.num_levels, tok.codebook_size, tok.dedup_size, tok.num_items, cfg.preset, cfg.encoder_mask)
    training.setup(cfg)
    item_tokens = tok.item_tokens.numpy()
    train_data = train_batches(d.sequences, d.train["user_id"].to_numpy().astype(np.int64), item_tokens,
                               mode=cfg.encoder_mask, max_items=cfg.max_items, batch_size=cfg.batch_size, seed=cfg.seed,
                               user_buckets=cfg.user_buckets)
    total = cfg.max_steps if cfg.max_steps > 0 else len(train_data) * cfg.max_epochs
    log.info("tiger: %d training examples (sliding windows) in %d batches per epoch; %d steps planned",
             train_data.num_examples, len(train_data), total)
    hist, targets, users = d.val
    pick = training.val_sample(len(hist), cfg.val_users)
    users = users[pick]
    bucket = (users % cfg.user_buckets) if cfg.user_buckets else np.zeros_like(users)
    val = EvalBatches([hist[i] for i in pick], targets[pick], bucket, lambda h: history_tokens(h, item_tokens))
    args = model_args(cfg, tok)
    module = TigerModule(cfg, args, tok, total_steps=total)
    summary = training.fit(module, train_data, val, cfg, out, resume=resume, name="tiger")
    _, state = checkpoints.checkpoint_state(Path(summary["best_checkpoint"]))
    log.info("tiger: best validation Recall@10 %.4f (on %d users) after %d steps in %.0f s", summary["best_val_recall@10"] or 0.0,
             len(pick), summary["steps"], summary["train_wall_s"])
    meta = {"args": args.to_dict(), "tokenizer": tok.spec(), "ids": str(ids_folder),
            "training": summary | {"val_users": len(pick), "train_examples_per_epoch": train_data.num_examples}}
    return write_folder(out, meta, state, d.codes)
