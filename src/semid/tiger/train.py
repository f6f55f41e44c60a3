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

from semid.evaluate import metrics as M
from semid.ids.tokens import SIDTokenizer
from semid.log import log, progress_enabled
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
                     recency_bias=cfg.recency_bias)


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
        c = self.cfg
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "tok" not in n.split(".")[0]]
        rest = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and "tok" not in n.split(".")[0])]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        if c.optimizer == "adafactor":
            opt = torch.optim.Adafactor(groups, lr=c.lr)
        else:
            opt = torch.optim.AdamW(groups, lr=c.lr, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(c, self.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        loader = self.trainer.train_dataloader
        if loader is not None and isinstance(getattr(loader, "dataset", None), Epochs):
            loader.dataset.epoch = self.current_epoch

    # ---- validation: Recall@10 / NDCG@10 by constrained beam search --------------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        hist, targets, users = batch
        self.trie.to(hist.device)
        state = self.model.start(hist, users if self.cfg.user_buckets else None)
        res = beam_search(state, len(hist), self.tokenizer, trie=self.trie, beam_size=self.cfg.val_beam,
                          top_k=10, device=hist.device)
        self._val.append(M.ranks(res.items.cpu().numpy(), targets.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        ranks = np.concatenate(self._val)
        self._val = []
        self.log("val/recall@10", float(M.recall_at(ranks, 10)), prog_bar=True)
        self.log("val/ndcg@10", float(M.ndcg_at(ranks, 10)))
        self.log("val/recall@5", float(M.recall_at(ranks, 5)))


def precision(cfg: TigerConfig) -> str:
    if cfg.precision != "auto":
        return cfg.precision if cfg.precision != "32" else "32-true"
    use_gpu = cfg.accelerator != "cpu" and torch.cuda.is_available()
    if not use_gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def fit(cfg: TigerConfig, tok: SIDTokenizer, train_seqs: list[np.ndarray], train_users: np.ndarray,
        val: tuple[list[np.ndarray], np.ndarray, np.ndarray], out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Train into ``out`` (checkpoints/, logs/); returns a summary with the best checkpoint path."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    _quiet_lightning()

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    item_tokens = tok.item_tokens.numpy()
    train = TrainBatches(train_seqs, train_users, item_tokens, mode=cfg.encoder_mask, max_items=cfg.max_items,
                         batch_size=cfg.batch_size, seed=cfg.seed, user_buckets=cfg.user_buckets)
    steps_per_epoch = len(train)
    total = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.max_epochs
    log.info("tiger: %d training examples (sliding windows) in %d batches per epoch; %d steps planned",
             train.num_examples, steps_per_epoch, total)

    hist, targets, users = val
    if cfg.val_users and cfg.val_users < len(hist):
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(hist), cfg.val_users, replace=False))
        hist, targets, users = [hist[i] for i in pick], targets[pick], users[pick]
    bucket = (users % cfg.user_buckets) if cfg.user_buckets else np.zeros_like(users)
    val_data = EvalBatches(hist, targets, bucket, item_tokens)

    module = TigerModule(cfg.model_dump(mode="json"), model_args(cfg, tok).to_dict(), tokenizer=tok, total_steps=total)
    ckpt_dir = out / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/recall@10", mode="max",
                                 save_top_k=1, save_last=True, enable_version_counter=False)
    callbacks = [checkpoint, EarlyStopping(monitor="val/recall@10", mode="max", patience=cfg.patience)]
    show = progress_enabled()
    # a fresh run rewrites logs/metrics.csv; a resumed one logs beside it
    version = f"resume-{time.strftime('%Y%m%d-%H%M%S')}" if resume else ""
    trainer = L.Trainer(
        accelerator=cfg.accelerator if cfg.accelerator != "gpu" else "cuda", devices=1,
        precision=precision(cfg), max_epochs=cfg.max_epochs, max_steps=cfg.max_steps,
        max_time={"minutes": cfg.max_time_min} if cfg.max_time_min else None,
        gradient_clip_val=cfg.grad_clip or None, check_val_every_n_epoch=cfg.val_every,
        num_sanity_val_steps=0, logger=CSVLogger(out, name="logs", version=version), callbacks=callbacks,
        enable_progress_bar=show, enable_model_summary=show, log_every_n_steps=20, default_root_dir=out,
        deterministic=False)
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)  # noqa: E731
    last = ckpt_dir / "last.ckpt"
    if not resume and ckpt_dir.is_dir():  # a fresh run must not mix with an old run's checkpoints
        for old in ckpt_dir.glob("*.ckpt"):
            old.unlink()
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        log.warning("tiger: --resume given but %s does not exist: starting from scratch", last)
    t0 = time.perf_counter()
    trainer.fit(module, loader(Epochs(train)), loader(val_data), ckpt_path=ckpt_path)
    best = checkpoint.best_model_path or str(last)
    score = checkpoint.best_model_score
    return {"best_checkpoint": best, "best_val_recall@10": float(score) if score is not None else None,
            "val_users": len(hist), "epochs": trainer.current_epoch, "steps": trainer.global_step,
            "train_examples_per_epoch": train.num_examples, "train_wall_s": round(time.perf_counter() - t0, 1),
            "precision": precision(cfg), "device": str(module.device)}


def _quiet_lightning() -> None:
    """Hide Lightning's tips and warnings that do not apply (single-process loading, no cloud)."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*IterableDataset.*has `__len__`.*", ".*LeafSpec.*", ".*exists and is not empty.*",
                    ".*does not have many workers.*", ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)


def load_checkpoint_weights(path: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """(cfg, model args, model state dict) from a Lightning checkpoint of :class:`TigerModule`."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    return hp["cfg"], hp["args"], state
