"""One training base for every trained recommender: configs, a LightningModule base and ``fit``.

- :class:`~semid.core.config.TrainerConfig` (in the core layer, so configs load without
  Lightning): the training keys, one set of names for every Lightning-trained model; a family
  overrides defaults, never renames a key.
- :class:`SemidModule`: throughput and loss logging, validation Recall@10 / NDCG@10 / Recall@5
  from ranked lists, AdamW (or Adafactor) with weight decay on weight matrices only and a per-step
  schedule (:func:`lr_lambda`), resuming the epoch's shuffle. A family implements
  :meth:`~SemidModule.step_loss` and :meth:`~SemidModule.top10`.
- :func:`fit`: one ``Trainer`` with ``checkpoints/{best,last}.ckpt`` (best by validation
  Recall@10), early stopping, an optional wall-time cap, ``--resume``, mixed precision on GPU and
  CSV logs under ``logs/``; returns the training summary written into ``config.json``.

**Several processes** (``devices``, ``num_nodes``, ``strategy``: Lightning's DDP, docs/scaling.md):
``batch_size`` is per process, so a step's *global batch* is ``batch_size × world size``, grouped
by length like one process's batch of that size and dealt out row by row (:mod:`semid.ddp`);
the learning rate is the global batch's. Each process scores a share of the validation users and
the ranks are gathered, so every process sees the same Recall@10 and the same early-stopping
decision. Rank 0 alone writes checkpoints and logs; the other ranks end after training
(:class:`~semid.ddp.WorkerDone`) and leave the model folder to rank 0. Checkpoints and exact
resumes, inside an epoch too: :mod:`semid.checkpoints`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger

from semid.checkpoints import TrainLoader, finish_epoch, readable_checkpoint, reopen_epoch, restore_rng
from semid.core import artifacts, trainlog
from semid.core.config import ModelConfig, TrainerConfig, lead_process
from semid.core.errors import ConfigError, Interrupted
from semid.core.log import log, progress_enabled
from semid.core.run import RunFolder
from semid.ddp import WorkerDone, shard
from semid.evaluate import metrics as M
from semid.sequences import Batches

MONITOR = "val/recall@10"


def precision(cfg: TrainerConfig) -> str:
    """Lightning precision: ``auto`` = fp32 on CPU and GPU alike.

    semid's models are small (width 64 to 128): on one H200 a step is a few milliseconds of GPU
    work, launch-bound, and bf16 autocast's casts cost more than its matrix products save (fp32
    trained SASRec-CE 2.9x and TIGER's cpu preset 2.5x faster, ``benchmarks/results/train_gpu.md``);
    on a CPU without bf16 units autocast is 5-8x slower. ``bf16-mixed`` / ``16-mixed`` stay a
    choice for wider models."""
    return "32-true" if cfg.precision in ("auto", "32") else cfg.precision


def sample(n: int, k: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed random sample of ``k`` of ``n`` (all when ``k`` is 0/None or ≥ n)."""
    if not k or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


VAL_SEED = 0  # one validation sample for every model and seed: their early stopping sees the same users


def val_sample(n: int, k: int | None) -> np.ndarray:
    """The validation users every model checks (a fixed sample of ``k``; all when 0/None or ≥ n)."""
    return sample(n, k, VAL_SEED)


def setup(cfg: ModelConfig) -> None:
    """Quiet Lightning and seed everything (call right before building the module)."""
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)


def lr_lambda(cfg: TrainerConfig, total_steps: int, clock=time.perf_counter):
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


class SemidModule(L.LightningModule):
    """Base of every model's LightningModule; ``self.model`` is the ``nn.Module`` being trained.

    Subclasses implement ``step_loss(batch) -> (loss, targets in the batch, {name: extra value})``
    and ``top10(histories, users) -> item ids [B, 10]`` for validation batches of
    :class:`semid.sequences.EvalBatches`; ``decays(name, parameter)`` picks weight-decayed parameters.
    """

    def __init__(self, cfg: TrainerConfig, hparams: dict[str, Any], total_steps: int = 1):
        super().__init__()
        self.save_hyperparameters({"cfg": cfg.model_dump(mode="json"), **hparams, "total_steps": total_steps})
        self.cfg, self.total_steps = cfg, total_steps
        self._seen, self._t0 = 0, None
        self.trained_before_s, self.fit_t0 = 0.0, None  # seconds of earlier processes (from the checkpoint); fit's start
        self.resumed_untimed = False  # resumed from a checkpoint written before 0.1's time fix
        self.restored_rng: dict[str, Any] = {}  # the random states of the checkpoint resumed from
        self._val: list[np.ndarray] = []

    def step_loss(self, batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def top10(self, hist, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decays(self, name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, n, extra = self.step_loss(batch)
        self._seen += n
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        # the epoch's mean loss per target over every process (the curve that compares runs)
        self.log("train/loss_epoch", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=n)
        for key, value in extra.items():
            self.log(f"train/{key}", value, batch_size=n)
        self.log("train/examples_per_s", self._seen / max(1e-9, time.perf_counter() - self._t0), prog_bar=True,
                 batch_size=n)
        self.log("train/targets", float(self._seen), batch_size=n)  # with the rate: the time of each logged step
        return loss

    def configure_optimizers(self):
        named = list(self.model.named_parameters())
        decay = [p for n, p in named if self.decays(n, p)]
        rest = [p for n, p in named if not self.decays(n, p)]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        if self.cfg.optimizer == "adafactor":
            opt = torch.optim.Adafactor(groups, lr=self.cfg.lr)
        else:
            opt = torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(self.cfg, self.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Random states go into every checkpoint, so a resumed run draws what an uninterrupted one would."""
        checkpoint["rng"] = {"torch": torch.get_rng_state()}
        checkpoint["train_s"] = self.train_seconds()
        if torch.cuda.is_available():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        finish_epoch(checkpoint, self.cfg.max_steps) or reopen_epoch(checkpoint)
        self.trained_before_s = float(checkpoint.get("train_s") or 0.0)
        self.resumed_untimed = "train_s" not in checkpoint
        self.restored_rng = checkpoint.get("rng") or {}
        restore_rng(self.restored_rng)

    def on_fit_start(self) -> None:
        if self.cfg.compile:
            self.model.compile()  # in place: the same parameters and state-dict keys, only the forward is traced

    def on_train_start(self) -> None:
        """A resumed run goes on with its epoch's shuffle, after the batches of that epoch already
        trained (a run stopped by ``max_steps`` or ``max_time_min`` stops inside an epoch); DDP
        processes draw their own dropout masks and negatives (one seeded stream each, derived from
        the shared one)."""
        loader = self.trainer.train_dataloader
        if loader is not None and isinstance(getattr(loader, "dataset", None), Batches):
            loader.dataset.epoch = self.current_epoch
            if self.trainer.fit_loop.restarted_mid_epoch:  # a checkpoint that reopen_epoch marked
                if isinstance(loader, TrainLoader):
                    loader.check_resumable(self.cfg.name or type(self).__name__)
                loader.dataset.skip = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
                restore_rng(self.restored_rng)  # iter(DataLoader) drew a seed since the restore; the stopped run had not
        if self.trainer.world_size > 1:
            torch.manual_seed(int(torch.randint(0, 2**62, (1,))) + self.global_rank)

    def validation_step(self, batch, batch_idx: int) -> None:
        hist, targets, users = batch
        self._val.append(M.ranks(self.top10(hist, users).cpu().numpy(), targets.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        r = np.concatenate(self._val) if self._val else np.zeros(0, dtype=np.int64)
        self._val.clear()
        r = self._gather(r)
        if not len(r):
            return
        self.log(MONITOR, float(M.recall_at(r, 10)), prog_bar=True)
        self.log("val/ndcg@10", float(M.ndcg_at(r, 10)))
        self.log("val/recall@5", float(M.recall_at(r, 5)))
        self.log("val/users", float(len(r)))  # every process's users, gathered under DDP
        if self.fit_t0 is not None:  # seconds trained so far, earlier processes included: time-to-quality curves
            self.log(trainlog.TRAIN_S, self.train_seconds())

    def train_seconds(self) -> float:
        """Wall seconds of training behind the current weights, over every process of a resumed run."""
        return self.trained_before_s + (time.perf_counter() - self.fit_t0 if self.fit_t0 is not None else 0.0)

    def _gather(self, r: np.ndarray) -> np.ndarray:
        """The validation ranks of every process (each scored a share of the users under DDP)."""
        if self.trainer.world_size == 1:
            return r
        sizes = self.all_gather(torch.tensor(len(r), device=self.device)).cpu().tolist()
        padded = torch.full((max(sizes),), -1, dtype=torch.int64, device=self.device)
        padded[:len(r)] = torch.as_tensor(r, dtype=torch.int64)
        every = self.all_gather(padded).cpu().numpy()
        return np.concatenate([row[:n] for row, n in zip(every, sizes)])


class ValidationLog(Callback):
    """One log line per validation where no progress bar shows it (a log file, a cell trained in a
    worker process of `semid compare` / `semid experiment`): the epoch, the validation Recall@10,
    the best so far, the training time, and the time left at this pace if every epoch runs."""

    def __init__(self, name: str, max_epochs: int | None):
        self.name, self.max_epochs, self.best = name, max_epochs, float("-inf")

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(MONITOR)
        if score is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        self.best = max(self.best, float(score))
        done = trainer.current_epoch + 1
        spent = module.train_seconds() if isinstance(module, SemidModule) else 0.0
        left = ""
        if self.max_epochs and self.max_epochs > done and spent > 0:
            left = f", about {spent / done * (self.max_epochs - done) / 60:.0f} min more if it runs to epoch {self.max_epochs}"
        of = f"/{self.max_epochs}" if self.max_epochs and self.max_epochs > 0 else ""
        log.info("%s: epoch %d%s, validation Recall@10 %.4f (best %.4f), %.1f min of training%s",
                 self.name, done, of, float(score), self.best, spent / 60, left)


def fit(module: SemidModule, train_data, val_data, cfg: TrainerConfig, out: Path, *, resume: bool = False,
        name: str = "model", log_every: int = 20) -> dict[str, Any]:
    """Train ``module`` into ``out``; returns the summary (best checkpoint, score, epochs, steps, time).

    ``train_data``/``val_data`` are iterable datasets that yield whole batches (``train_data`` a
    :class:`~semid.sequences.Batches`, which DDP splits by rows). The lr schedule's length is set
    here, from the steps this run takes (fewer per epoch with more processes).
    """
    on_cpu = cfg.accelerator == "cpu" or (cfg.accelerator == "auto" and not torch.cuda.is_available())
    if cfg.compile and on_cpu and not cxx_compiler():
        raise ConfigError("compile=true on a CPU needs a C++ compiler for torch.compile's kernels (g++, or one named "
                          "by $CXX): install one (e.g. apt install g++) or leave compile off")
    ckpt_dir = out / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=MONITOR, mode="max",
                                 save_top_k=1, enable_version_counter=False)
    # last.ckpt at the end of every epoch, validated or not. Lightning's save_last copied it only when
    # best.ckpt improved, so a kill lost every epoch since the best (a 60-epoch TIGER killed at epoch
    # 58 went back to 42), and a copy written at validation's end resumed with other random draws than
    # an uninterrupted run. Listed after `checkpoint`, so it carries the best score so far.
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                             save_on_train_epoch_end=True, enable_version_counter=False)
    # not strict: a run that stops (max_steps, max_time_min) before its first validation ends with
    # its last weights and a warning, instead of Lightning's error about the missing metric
    # checked when validation ends: at a train epoch's end a budget's stop inside an epoch would count the
    # previous validation once more against the patience
    stopper = EarlyStopping(monitor=MONITOR, mode="max", patience=cfg.patience, strict=False, check_on_train_epoch_end=False)
    # a fresh run rewrites logs/metrics.csv; a resumed one logs beside it
    version = f"resume-{time.strftime('%Y%m%d-%H%M%S')}" if resume else ""
    try:
        trainer = L.Trainer(
            accelerator=cfg.accelerator if cfg.accelerator != "gpu" else "cuda", devices=cfg.devices,
            num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=precision(cfg), max_epochs=cfg.max_epochs,
            max_steps=cfg.max_steps, max_time={"minutes": cfg.max_time_min} if cfg.max_time_min else None,
            gradient_clip_val=cfg.grad_clip or None, check_val_every_n_epoch=cfg.val_every, num_sanity_val_steps=0,
            logger=loggers(cfg, out, name, version),
            callbacks=[checkpoint, stopper, latest, *([] if progress_enabled() else [ValidationLog(name, cfg.max_epochs)])],
            enable_progress_bar=progress_enabled(), enable_model_summary=False, default_root_dir=out,
            deterministic=False)
        environment = getattr(trainer.strategy, "cluster_environment", None)
        if environment is not None:  # Lightning checks torchrun's and SLURM's process counts only when it launches
            environment.validate_settings(num_devices=trainer.num_devices, num_nodes=trainer.num_nodes)
    except (MisconfigurationException, ValueError) as exc:  # no such GPUs, or torchrun started another number
        raise ConfigError(f"{name}: accelerator={cfg.accelerator} devices={cfg.devices} num_nodes={cfg.num_nodes} "
                          f"strategy={cfg.strategy} do not fit this machine or launcher: {exc}") from None
    if trainer.is_global_zero != lead_process():  # torchrun or srun started several processes for one
        raise ConfigError(f"{name}: this process is one of several (torchrun, srun) but devices={cfg.devices} "
                          f"num_nodes={cfg.num_nodes} make a run of one: set devices to the processes per machine")
    train, val = shard(train_data, val_data, trainer)
    if trainer.world_size > 1:
        log.info("%s: %d processes (%s), global batch = batch_size %d × %d, %d steps per epoch", name,
                 trainer.world_size, type(trainer.strategy).__name__, cfg.batch_size, trainer.world_size, len(train))
    trainer.log_every_n_steps = max(1, min(log_every, len(train)))
    module.total_steps = module.hparams["total_steps"] = (
        cfg.max_steps if cfg.max_steps > 0 else len(train) * cfg.max_epochs)
    last = ckpt_dir / "last.ckpt"
    if not resume and ckpt_dir.is_dir() and trainer.is_global_zero:  # a fresh run must not mix with old checkpoints
        for old in ckpt_dir.glob("*.ckpt"):
            old.unlink()
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        log.warning("%s: --resume given but %s does not exist: starting from scratch", name, last)
    if ckpt_path is not None:
        readable_checkpoint(last)
    t0, started = time.perf_counter(), artifacts.now()
    module.fit_t0 = t0
    try:
        trainer.fit(module, _loader(train), _loader(val), ckpt_path=ckpt_path)
    except SystemExit:  # Lightning's graceful shutdown after Ctrl-C ends in sys.exit(1)
        if not trainer.interrupted:
            raise
        kept = (f"{last} keeps epoch {readable_checkpoint(last)['epoch'] + 1}: continue with the same command and --resume"
                if last.is_file() else "no epoch had finished, so there is nothing to resume")
        raise Interrupted(f"{name}: training interrupted during epoch {trainer.current_epoch + 1}; {kept}") from None
    if not trainer.is_global_zero:
        raise WorkerDone(0)
    score = checkpoint.best_model_score
    if score is None:
        log.warning("%s: training stopped after %d steps, before its first validation: the model is the last "
                    "step's (%s), chosen on nothing", name, trainer.global_step, last)
    if stopper.stopped_epoch:
        stopped = "early stopping"
    elif trainer.current_epoch >= cfg.max_epochs:
        stopped = "max_epochs"
    elif 0 < cfg.max_steps <= trainer.global_step:
        stopped = "max_steps"
    else:
        stopped = "max_time_min"
    return {"best_checkpoint": checkpoint.best_model_path or str(last),
            "best_val_recall@10": float(score) if score is not None else None,
            "epochs": trainer.current_epoch, "steps": trainer.global_step,
            "train_wall_s": round(module.train_seconds(), 1), **resumed_at(module, ckpt_path), "started": started,
            "stopped_by": stopped, "precision": precision(cfg),
            "device": str(trainer.strategy.root_device), "processes": trainer.world_size, "threads": torch.get_num_threads()}


def cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU kernels would use ($CXX, else g++ / c++ / clang++ on PATH)."""
    named = os.environ.get("CXX")
    return next((p for p in (named and shutil.which(named), shutil.which("g++"), shutil.which("c++"),
                             shutil.which("clang++")) if p), None)


def resumed_at(module: SemidModule, ckpt_path: str | None) -> dict[str, float]:
    """``{"resumed_at_s": seconds before the resume}`` for a resumed run whose checkpoint timed them
    (``train_wall_s`` then counts every process; semid.core.trainlog reads older folders)."""
    if ckpt_path is None or module.resumed_untimed:
        return {}
    return {"resumed_at_s": round(module.trained_before_s, 1)}


def loggers(cfg: TrainerConfig, out: Path, name: str, version: str) -> list[Any]:
    """CSV curves always (``logs/metrics.csv``); TensorBoard and MLflow (a local file store shared by
    the run's models) when ``cfg.loggers`` asks for them."""
    chosen: list[Any] = [CSVLogger(out, name="logs", version=version)]
    try:
        if "tensorboard" in cfg.loggers:
            chosen.append(TensorBoardLogger(out, name="tensorboard", version=version, default_hp_metric=False))
        if "mlflow" in cfg.loggers:
            store = RunFolder(out.parent.parent).mlruns  # RUN/models/<name> → RUN/mlruns
            # a plain local file store, readable by `mlflow ui --backend-store-uri RUN/mlruns`, with no
            # database to set up: MLflow 3 keeps it but asks for this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            chosen.append(MLFlowLogger(experiment_name=out.parent.parent.name, run_name=out.name,
                                       tracking_uri=store.resolve().as_uri(), tags={"model": name}))
    except ModuleNotFoundError as exc:  # Lightning names the missing package
        raise ConfigError(f"{name}: loggers={cfg.loggers}: {exc}; install them with pip install 'semid[tracking]'") from None
    return chosen


def _loader(dataset) -> torch.utils.data.DataLoader:
    """Our datasets yield whole batches and shard themselves (:func:`semid.ddp.shard`): Lightning's
    ``DistributedSampler`` applies to map-style datasets only and never touches these."""
    kind = TrainLoader if isinstance(dataset, Batches) else torch.utils.data.DataLoader
    return kind(dataset, batch_size=None, num_workers=0)


def quiet_lightning() -> None:
    """Hide Lightning's tips and warnings that do not apply (single-process loading, no cloud, epoch
    metrics that are gathered already, torch's deprecation inside Lightning's ``all_gather``)."""
    for logger in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                   "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    for pattern in (".*IterableDataset.*has `__len__`.*", ".*LeafSpec.*", ".*exists and is not empty.*",
                    ".*does not have many workers.*", ".*litlogger.*", ".*on epoch level in distributed setting.*",
                    ".*all_gather is deprecated.*", ".*MLFlow only allows.*"):
        warnings.filterwarnings("ignore", message=pattern)
