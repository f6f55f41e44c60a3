"""Training TIGER with Lightning: sliding-window batches, validation Recall@10 by beam search,
``last``/``best`` checkpoints, early stopping, resume, mixed precision on GPU, CSV metrics.

The same code runs on CPU and on one GPU (``accelerator=auto``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from semid import training
from semid.evaluate import metrics as M
from semid.ids.tokens import SIDTokenizer
from semid.log import log
from semid.tiger.beam import beam_search
from semid.tiger.config import TigerConfig
from semid.tiger.data import IGNORE, Batch, TrainBatches, history_tokens
from semid.tiger.model import ModelArgs, Tiger
from semid.tiger.trie import PrefixTrie


def model_args(cfg: TigerConfig, tok: SIDTokenizer) -> ModelArgs:
    return ModelArgs(vocab_size=tok.vocab_size, id_length=tok.id_length,
                     level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                     d_model=cfg.d_model, n_heads=cfg.n_heads, head_dim=cfg.head_dim, d_ff=cfg.d_ff,
                     encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers, dropout=cfg.dropout,
                     attn_dropout=cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout,
                     max_items=cfg.max_items, encoder_mask=cfg.encoder_mask, user_buckets=cfg.user_buckets,
                     recency_bias=cfg.recency_bias, positions=cfg.positions)


class Epochs(torch.utils.data.IterableDataset):
    """Iterates :class:`TrainBatches`, reshuffled every epoch."""

    def __init__(self, batches: TrainBatches):
        self.batches, self.epoch = batches, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.batches.set_epoch(self.epoch)
        self.epoch += 1
        yield from (self.batches[i] for i in range(len(self.batches)))


class EvalBatches(torch.utils.data.IterableDataset):
    """Validation users in length-sorted batches: (history tokens, targets, users)."""

    def __init__(self, hist: list[np.ndarray], targets: np.ndarray, users: np.ndarray, item_tokens: np.ndarray,
                 batch_users: int = 256):
        order = np.argsort([len(h) for h in hist], kind="stable")
        self.parts = [order[i:i + batch_users] for i in range(0, len(order), batch_users)]
        self.hist, self.targets, self.users, self.item_tokens = hist, targets, users, item_tokens

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self):
        for idx in self.parts:
            yield (history_tokens([self.hist[i] for i in idx], self.item_tokens),
                   torch.from_numpy(self.targets[idx]), torch.from_numpy(self.users[idx]))


def lr_lambda(cfg: TigerConfig, total_steps: int, clock=time.perf_counter):
    """Multiplier of the peak lr at each step.

    Cosine decays over the planned steps or, with ``max_time_min``, over the time budget when
    that runs out first: a run cut short by the clock still ends with a small learning rate.
    """
    warm = max(1, cfg.warmup_steps)
    # 8% of the budget is left for the validations, the last one included
    budget_s = cfg.max_time_min * 60 * 0.92 if cfg.max_time_min else None
    start: list[float] = []

    def f(step: int) -> float:
        if budget_s and not start:
            start.append(clock())
        if cfg.schedule == "inverse_sqrt":  # T5: constant for `warm` steps, then 1/sqrt(step)
            return 1.0 if step < warm else math.sqrt(warm / step)
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1, total_steps - warm)
        if budget_s:
            progress = max(progress, (clock() - start[0]) / budget_s)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


class TigerModule(L.LightningModule):
    def __init__(self, cfg: dict[str, Any], args: dict[str, Any], *, tokenizer: SIDTokenizer | None = None,
                 total_steps: int = 1):
        super().__init__()
        self.save_hyperparameters({"cfg": cfg, "args": args, "total_steps": total_steps})
        self.cfg = TigerConfig(**cfg)
        self.model = Tiger(ModelArgs(**args))
        self.tokenizer = tokenizer
        self.trie = PrefixTrie(tokenizer) if tokenizer is not None else None
        self.total_steps = total_steps
        self._seen, self._t0 = 0, None
        self._val: list[np.ndarray] = []

    # ---- training ----------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = self.model(batch.enc, batch.dec_in, batch.limit, batch.users)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch.labels.reshape(-1),
                               ignore_index=IGNORE)
        n = batch.num_targets
        self._seen += n
        if self._t0 is None:
            self._t0 = time.perf_counter()
        rate = self._seen / max(1e-9, time.perf_counter() - self._t0)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/examples_per_s", rate, prog_bar=True, batch_size=n)
        return loss

    def configure_optimizers(self):
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "tok" not in n.split(".")[0]]
        rest = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and "tok" not in n.split(".")[0])]
        return training.optimizers(self.cfg, decay, rest, lr_lambda(self.cfg, self.total_steps))

    def on_train_start(self) -> None:
        training.resume_epoch(self, Epochs)

    # ---- validation: Recall@10 / NDCG@10 by constrained beam search --------------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        hist, targets, users = batch
        self.trie.to(hist.device)
        state = self.model.start(hist, users if self.cfg.user_buckets else None)
        res = beam_search(state, len(hist), self.tokenizer, trie=self.trie, beam_size=self.cfg.val_beam,
                          top_k=10, device=hist.device)
        self._val.append(M.ranks(res.items.cpu().numpy(), targets.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        training.log_validation(self, self._val)


def fit(cfg: TigerConfig, tok: SIDTokenizer, train_seqs: list[np.ndarray], train_users: np.ndarray,
        val: tuple[list[np.ndarray], np.ndarray, np.ndarray], out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Train into ``out`` (checkpoints/, logs/); returns a summary with the best checkpoint path."""
    training.setup(cfg)
    item_tokens = tok.item_tokens.numpy()
    train = TrainBatches(train_seqs, train_users, item_tokens, mode=cfg.encoder_mask, max_items=cfg.max_items,
                         batch_size=cfg.batch_size, seed=cfg.seed, user_buckets=cfg.user_buckets)
    steps_per_epoch = len(train)
    total = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.max_epochs
    log.info("tiger: %d training examples (sliding windows) in %d batches per epoch; %d steps planned",
             train.num_examples, steps_per_epoch, total)

    hist, targets, users = val
    pick = training.sample(len(hist), cfg.val_users, cfg.seed)
    hist, targets, users = [hist[i] for i in pick], targets[pick], users[pick]
    bucket = (users % cfg.user_buckets) if cfg.user_buckets else np.zeros_like(users)
    val_data = EvalBatches(hist, targets, bucket, item_tokens)

    module = TigerModule(cfg.model_dump(mode="json"), model_args(cfg, tok).to_dict(), tokenizer=tok, total_steps=total)
    summary = training.fit(module, Epochs(train), val_data, cfg, out, resume=resume, name="tiger")
    return summary | {"val_users": len(hist), "train_examples_per_epoch": train.num_examples}


def load_checkpoint_weights(path: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """(cfg, model args, model state dict) from a Lightning checkpoint of :class:`TigerModule`."""
    hp, state = training.checkpoint_state(path)
    return hp["cfg"], hp["args"], state
