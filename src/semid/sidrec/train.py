"""Training SID-GRU / SID-BERT4Rec with Lightning: per-level cross-entropy with teacher forcing,
validation Recall@10 by trie-constrained beam search on a fixed sample of users, ``last``/``best``
checkpoints, early stopping, resume, mixed precision on GPU, CSV metrics, ``max_time_min``.

The loop's plumbing (epoch reshuffling, validation batches, lr schedule, precision) is TIGER's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from semid import training
from semid.evaluate import metrics as M
from semid.ids.tokens import SIDTokenizer
from semid.log import log
from semid.sidrec.config import SIDBert4RecConfig, SIDGRUConfig, SIDRecConfig
from semid.sidrec.data import SeqBatch, TrainRows, gru_targets
from semid.sidrec.models import SIDArgs, build_model
from semid.tiger.beam import beam_search
from semid.tiger.train import EvalBatches, Epochs, lr_lambda
from semid.tiger.trie import PrefixTrie

CONFIGS: dict[str, type[SIDRecConfig]] = {"sid_gru": SIDGRUConfig, "sid_bert4rec": SIDBert4RecConfig}


def kind_of(cfg: SIDRecConfig) -> str:
    return "sid_bert4rec" if isinstance(cfg, SIDBert4RecConfig) else "sid_gru"


def model_args(cfg: SIDRecConfig, tok: SIDTokenizer) -> SIDArgs:
    extra = ({"layers": cfg.layers, "n_heads": cfg.n_heads} if isinstance(cfg, SIDBert4RecConfig)
             else {"gru_layers": cfg.gru_layers})
    return SIDArgs(vocab_size=tok.vocab_size, level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                   kind=kind_of(cfg), d_model=cfg.d_model, d_ff=cfg.d_ff, dropout=cfg.dropout, tied=cfg.tied,
                   max_items=cfg.max_items, **extra)


class SIDRecModule(L.LightningModule):
    def __init__(self, cfg: dict[str, Any], args: dict[str, Any], *, tokenizer: SIDTokenizer | None = None,
                 total_steps: int = 1):
        super().__init__()
        self.save_hyperparameters({"cfg": cfg, "args": args, "total_steps": total_steps})
        args = {**args, "level_ranges": [tuple(r) for r in args["level_ranges"]]}
        self.kind = args["kind"]
        self.cfg = CONFIGS[self.kind](**cfg)
        self.model = build_model(SIDArgs(**args))
        self.tokenizer = tokenizer
        self.trie = PrefixTrie(tokenizer) if tokenizer is not None else None
        self.total_steps = total_steps
        self._seen, self._t0 = 0, None
        self._val: list[np.ndarray] = []

    # ---- training ----------------------------------------------------------------------------
    def training_step(self, batch: SeqBatch, batch_idx: int) -> torch.Tensor:
        if self.kind == "sid_gru":
            src, target = gru_targets(batch.tokens)
            h = self.model.hidden(batch.tokens)[src]
        else:
            target = batch.tokens[batch.masked]
            h = self.model.hidden(batch.tokens, batch.masked)[batch.masked]
        loss, per_level = self.model.heads.nll(h, target)
        n = len(target)
        self._seen += n
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for lvl, ce in enumerate(per_level):
            self.log(f"train/ce_level{lvl}", ce, batch_size=n)
        self.log("train/targets_per_s", self._seen / max(1e-9, time.perf_counter() - self._t0), prog_bar=True,
                 batch_size=n)
        return loss

    def configure_optimizers(self):
        named = list(self.model.named_parameters())
        decay = [p for n, p in named if p.ndim >= 2 and "codes" not in n and "prefix" not in n and "pos" not in n]
        ids = {id(p) for p in decay}
        rest = [p for _, p in named if id(p) not in ids]
        return training.optimizers(self.cfg, decay, rest, lr_lambda(self.cfg, self.total_steps))

    def on_train_start(self) -> None:
        training.resume_epoch(self, Epochs)

    # ---- validation: Recall@10 / NDCG@10 by constrained beam search ----------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        hist, targets, _ = batch
        self.trie.to(hist.device)
        state = self.model.start(hist.view(len(hist), -1, self.tokenizer.id_length))
        res = beam_search(state, len(hist), self.tokenizer, trie=self.trie, beam_size=self.cfg.val_beam,
                          top_k=10, device=hist.device)
        self._val.append(M.ranks(res.items.cpu().numpy(), targets.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        training.log_validation(self, self._val)


def fit(cfg: SIDRecConfig, tok: SIDTokenizer, train_seqs: list[np.ndarray],
        val: tuple[list[np.ndarray], np.ndarray, np.ndarray], out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Train into ``out`` (checkpoints/, logs/); returns a summary with the best checkpoint path."""
    training.setup(cfg)
    kind = kind_of(cfg)
    item_tokens = tok.item_tokens.numpy()
    mask_prob = cfg.mask_prob if isinstance(cfg, SIDBert4RecConfig) else None
    train = TrainRows(train_seqs, item_tokens, max_items=cfg.max_items, batch_size=cfg.batch_size, seed=cfg.seed,
                      mask_prob=mask_prob)
    total = cfg.max_steps if cfg.max_steps > 0 else len(train) * cfg.max_epochs
    log.info("%s: %d training sequences (%d next-item targets) in %d batches per epoch; %d steps planned",
             kind, len(train.rows), train.num_targets, len(train), total)

    hist, targets, users = val
    pick = training.sample(len(hist), cfg.val_users, cfg.seed)
    hist, targets, users = [hist[i] for i in pick], targets[pick], users[pick]
    module = SIDRecModule(cfg.model_dump(mode="json"), model_args(cfg, tok).to_dict(), tokenizer=tok, total_steps=total)
    summary = training.fit(module, Epochs(train), EvalBatches(hist, targets, users, item_tokens), cfg, out,
                           resume=resume, name=kind)
    return summary | {"val_users": len(hist), "train_sequences": len(train.rows),
                      "train_targets_per_epoch": train.num_targets}


def load_checkpoint_weights(path: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """(cfg, model args, model state dict) from a Lightning checkpoint of :class:`SIDRecModule`."""
    hp, state = training.checkpoint_state(path)
    return hp["cfg"], hp["args"], state
