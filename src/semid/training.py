"""Lightning plumbing shared by every trained recommender (TIGER, SASRec & co., SID-GRU & co.).

:func:`fit` runs one ``Trainer`` with the project's conventions: ``checkpoints/{best,last}.ckpt``
(best by validation Recall@10), early stopping, a wall-time cap, ``--resume`` from ``last``,
mixed precision on GPU, CSV logs under ``logs/``, and a summary dict for the model's
``config.json``. A model's config supplies the keys it reads (see :func:`fit`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from semid.log import log, progress_enabled

MONITOR = "val/recall@10"


def precision(cfg: Any) -> str:
    """Lightning precision: ``auto`` = bf16 on a GPU that has it, else fp16 on GPU, fp32 on CPU."""
    if cfg.precision != "auto":
        return cfg.precision if cfg.precision != "32" else "32-true"
    if cfg.accelerator == "cpu" or not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def sample(n: int, k: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed random sample of ``k`` of ``n`` (all when ``k`` is 0/None or ≥ n)."""
    if not k or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def setup(cfg: Any) -> None:
    """Quiet Lightning, apply ``cfg.threads``, seed everything."""
    quiet_lightning()
    if getattr(cfg, "threads", None):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)


def fit(module: L.LightningModule, train_data, val_data, cfg: Any, out: Path, *, resume: bool = False,
        name: str = "model", log_every: int = 20) -> dict[str, Any]:
    """Train ``module`` into ``out``; returns the summary (best checkpoint, score, epochs, steps, time).

    ``train_data``/``val_data`` are iterable datasets that yield whole batches. ``cfg`` keys read:
    accelerator, precision, max_epochs, max_steps (optional), max_time_min, grad_clip, val_every,
    patience.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    ckpt_dir = out / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=MONITOR, mode="max",
                                 save_top_k=1, save_last=True, enable_version_counter=False)
    stopper = EarlyStopping(monitor=MONITOR, mode="max", patience=cfg.patience)
    show = progress_enabled()
    # a fresh run rewrites logs/metrics.csv; a resumed one logs beside it
    version = f"resume-{time.strftime('%Y%m%d-%H%M%S')}" if resume else ""
    trainer = L.Trainer(
        accelerator=cfg.accelerator if cfg.accelerator != "gpu" else "cuda", devices=1,
        precision=precision(cfg), max_epochs=cfg.max_epochs, max_steps=getattr(cfg, "max_steps", -1),
        max_time={"minutes": cfg.max_time_min} if cfg.max_time_min else None,
        gradient_clip_val=cfg.grad_clip or None, check_val_every_n_epoch=cfg.val_every,
        num_sanity_val_steps=0, logger=CSVLogger(out, name="logs", version=version), callbacks=[checkpoint, stopper],
        enable_progress_bar=show, enable_model_summary=False, log_every_n_steps=max(1, min(log_every, len(train_data))), default_root_dir=out,
        deterministic=False)
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)  # noqa: E731
    last = ckpt_dir / "last.ckpt"
    if not resume and ckpt_dir.is_dir():  # a fresh run must not mix with an old run's checkpoints
        for old in ckpt_dir.glob("*.ckpt"):
            old.unlink()
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        log.warning("%s: --resume given but %s does not exist: starting from scratch", name, last)
    t0 = time.perf_counter()
    trainer.fit(module, loader(train_data), loader(val_data), ckpt_path=ckpt_path)
    score = checkpoint.best_model_score
    if stopper.stopped_epoch:
        stopped = "early stopping"
    elif trainer.current_epoch >= cfg.max_epochs or 0 < getattr(cfg, "max_steps", -1) <= trainer.global_step:
        stopped = "max_epochs" if trainer.current_epoch >= cfg.max_epochs else "max_steps"
    else:
        stopped = "max_time_min"
    return {"best_checkpoint": checkpoint.best_model_path or str(last),
            "best_val_recall@10": float(score) if score is not None else None,
            "epochs": trainer.current_epoch, "steps": trainer.global_step,
            "train_wall_s": round(time.perf_counter() - t0, 1), "stopped_by": stopped, "precision": precision(cfg),
            "device": str(module.device), "threads": torch.get_num_threads()}


def resume_epoch(module: L.LightningModule, dataset_type: type) -> None:
    """``on_train_start``: a resumed run goes on with the next epoch's shuffle of a ``dataset_type``."""
    loader = module.trainer.train_dataloader
    if loader is not None and isinstance(getattr(loader, "dataset", None), dataset_type):
        loader.dataset.epoch = module.current_epoch


def optimizers(cfg: Any, decay: list, rest: list, schedule) -> dict[str, Any]:
    """AdamW (or Adafactor when ``cfg.optimizer`` says so) with weight decay on ``decay`` only, and a
    per-step ``LambdaLR(schedule)``, in Lightning's ``configure_optimizers`` form."""
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if getattr(cfg, "optimizer", "adamw") == "adafactor":
        opt = torch.optim.Adafactor(groups, lr=cfg.lr)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def log_validation(module: L.LightningModule, ranks: list[np.ndarray]) -> None:
    """Log Recall@10 (the monitored metric), NDCG@10 and Recall@5 of the collected ranks; clears them."""
    from semid.evaluate import metrics as M

    if not ranks:
        return
    r = np.concatenate(ranks)
    ranks.clear()
    module.log(MONITOR, float(M.recall_at(r, 10)), prog_bar=True)
    module.log("val/ndcg@10", float(M.ndcg_at(r, 10)))
    module.log("val/recall@5", float(M.recall_at(r, 5)))


def checkpoint_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(hyper-parameters, the ``model.`` sub-module's state dict) of a Lightning checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    return ckpt["hyper_parameters"], state


def quiet_lightning() -> None:
    """Hide Lightning's tips and warnings that do not apply (single-process loading, no cloud)."""
    import logging
    import warnings

    for logger in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                   "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    for pattern in (".*IterableDataset.*has `__len__`.*", ".*LeafSpec.*", ".*exists and is not empty.*",
                    ".*does not have many workers.*", ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)
