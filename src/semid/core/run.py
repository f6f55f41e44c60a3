"""The run folder: the one owner of every path a run holds, its tables, and the reuse check.

    run = RunFolder("runs/beauty")
    run.table("train")                  # data/train.parquet, a clear error when prepare has not run
    run.embeddings                      # embed/item_embeddings.npy
    run.ids_dir("rqvae-3x256")          # ids/rqvae-3x256/
    run.model_dir("sasrec-ce")          # models/sasrec-ce/

Layout (docs/architecture.md has the full table)::

    data/        items, users, interactions, train/val/test (.parquet + .csv), stats.json   prepare
    embed/       item_embeddings.npy                                                       embed
    ids/<name>/  semantic_ids.parquet (+ .csv), config.json, model/codebooks.safetensors  ids train
    models/<m>/  model.safetensors, config.json, checkpoints/, logs/, metrics*.json        train, evaluate
    compare/     comparison.{md,csv,json}, recall10.png                                    compare
    study/       the ranking study's grid                                                  rank study

Every stage folder carries a ``manifest.json`` (:mod:`semid.core.artifacts`); :func:`reuse` is
the one "is this stage up to date" check every stage starts with.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from safetensors import safe_open

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log

if TYPE_CHECKING:
    import torch

DATA, EMBED, IDS, MODELS, COMPARE, STUDY = "data", "embed", "ids", "models", "compare", "study"
ANALYSIS, MLRUNS = "analysis", "mlruns"
# the command that writes each stage folder, named when one of its files is missing
WRITER = {DATA: "semid prepare", EMBED: "semid embed", IDS: "semid ids train", MODELS: "semid train <model>",
          COMPARE: "semid compare", STUDY: "semid rank study", ANALYSIS: "semid analyze"}
EMBEDDINGS = "item_embeddings.npy"
WEIGHTS, MODEL_CONFIG = "model.safetensors", "config.json"  # what every model folder holds
SEMANTIC_IDS = "semantic_ids.parquet"
TABLES = ("items", "users", "interactions", "train", "val", "test")
LOCK = ".semid.lock"


class RunFolder:
    """Paths of one run folder; nothing is created until a stage writes."""

    def __init__(self, root: Path | str | RunFolder):
        self.root = Path(root.root if isinstance(root, RunFolder) else root)
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root} is a file, not a run folder: pass --out a folder (it is created when missing)")

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    def __str__(self) -> str:
        return str(self.root)

    # ---- stage folders -----------------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.root / DATA

    @property
    def embed(self) -> Path:
        return self.root / EMBED

    @property
    def compare(self) -> Path:
        return self.root / COMPARE

    @property
    def study(self) -> Path:
        return self.root / STUDY

    @property
    def analysis(self) -> Path:
        return self.root / ANALYSIS

    @property
    def mlruns(self) -> Path:
        """MLflow's local file store of the run's trainings (``loggers=[mlflow]``)."""
        return self.root / MLRUNS

    @property
    def ids_root(self) -> Path:
        return self.root / IDS

    @property
    def models_root(self) -> Path:
        return self.root / MODELS

    def ids_dir(self, name: str) -> Path:
        return self.ids_root / name

    def model_dir(self, name: str) -> Path:
        return self.models_root / name

    # ---- files -------------------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        return self.data / f"{name}.parquet"

    def table(self, name: str) -> pl.DataFrame:
        """One table of the prepared data, with a clear error when ``prepare`` has not run."""
        return artifacts.read_with(self.need(self.table_path(name), "semid prepare"), pl.read_parquet)

    @property
    def embeddings(self) -> Path:
        return self.embed / EMBEDDINGS

    def semantic_ids(self, name: str) -> Path:
        return self.ids_dir(name) / SEMANTIC_IDS

    def need(self, path: Path, command: str | None = None) -> Path:
        """``path`` if it exists, else an error naming the command that makes it (by default the
        writer of the stage folder it lies in)."""
        if not Path(path).exists():
            raise DataError(f"{path} not found: run `{command or self.writer(path)} --out {self.root}` first")
        return Path(path)

    def writer(self, path: Path) -> str:
        """The command that writes ``path``: the writer of the stage folder it lies in."""
        try:
            top = Path(path).resolve().relative_to(self.root.resolve()).parts[0]
        except (ValueError, IndexError):
            return "semid run"
        return WRITER.get(top, "semid run")

    def lock(self, command: str) -> int:
        """Take the run folder's lock (``.semid.lock``) for this process: another process writing the
        same folder gets a DataError naming the holder. Returns the descriptor; :func:`unlock` frees it
        (so does the process's exit, even a killed one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataError(f"{self.root} is in use by {holder}; wait for it to finish, or use another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} (`{command}`, since {time.strftime('%Y-%m-%d %H:%M:%S')})".encode())
        return fd

    def holder(self) -> str | None:
        """Who holds the run folder's lock now, as :meth:`lock` wrote it, or None when the process that
        wrote it is gone. Only reads: it takes no lock, so it never gets in the way of one."""
        try:
            text = (self.root / LOCK).read_text(errors="replace").strip()
            pid = int(text.split()[1]) if text.startswith("pid ") else 0
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)  # signal 0: does the process exist (a lock dies with its process)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists, under another user
        return text

    def dataset(self) -> str:
        """The dataset name the data stage recorded (the folder's name before prepare ran)."""
        manifest = artifacts.load_manifest(self.data) or {}
        return str(manifest.get("config", {}).get("dataset") or self.root.name)

    def _split_stats(self) -> dict[str, Any]:
        """The ``split`` block of ``data/stats.json`` (empty before ``prepare``)."""
        stats = self.data / "stats.json"
        return artifacts.read_json(stats).get("split", {}) if stats.is_file() else {}

    def split_protocol(self) -> str | None:
        return self._split_stats().get("protocol")

    def cold_start_split(self) -> bool:
        """Whether the split was made for cold start: items held out of training (``holdout_items_share``)
        or a global temporal split. A leave-one-out split also has a few targets no training row holds
        (an item whose every event is some user's last), but not by design."""
        split = self._split_stats()
        return bool(split.get("held_out_items")) or str(split.get("protocol", "")).startswith("global temporal")

    def inputs(self, files: Mapping[str, Path]) -> dict[str, str]:
        """Fingerprints of a stage's input files; a missing one is an error naming its stage."""
        for path in files.values():
            self.need(path)
        return artifacts.fingerprint_inputs(files)


def stale_inputs(recorded: Mapping[str, str], current: Mapping[str, Path]) -> list[str]:
    """Names of the inputs whose file is missing or differs from the fingerprint ``recorded`` when a
    stage ran (a model, say, against the data and IDs it was trained on)."""
    bad = []
    for name, path in current.items():
        if not Path(path).is_file() or artifacts.fingerprint_inputs({name: path})[name] != recorded.get(name):
            bad.append(f"{name} ({path})")
    return bad


def check_folder(stage: str, folder: Path, fix: str, *, manifest: str = artifacts.MANIFEST) -> dict[str, Any]:
    """The manifest of a finished stage folder whose outputs are still what the stage wrote; else a
    DataError naming what is missing or changed and ``fix``, the command that rebuilds it."""
    m = artifacts.load_manifest(folder, manifest)
    if m is None or m.get("status") != "complete":
        raise DataError(f"{folder} holds no finished {stage} (its {manifest} is missing or unreadable): {fix}")
    changed = artifacts.changed_outputs(folder, m)
    if changed:
        raise DataError(f"{folder}: {', '.join(changed)} changed since {stage} wrote it (edited, truncated or "
                        f"replaced), so it no longer matches its manifest: {fix}")
    return m


def reuse(stage: str, folder: Path, config: Mapping[str, Any], inputs: Mapping[str, str], *, force: bool = False,
          manifest: str = artifacts.MANIFEST) -> bool:
    """True (and a log line) when ``folder`` already holds this stage's outputs for this exact
    config and these inputs; ``force`` always recomputes."""
    if force or not artifacts.is_fresh(folder, config, inputs, manifest=manifest):
        return False
    log.info("%s: %s is up to date (reused; --force to redo)", stage, folder)
    return True


def read_model_folder(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json, weights) of a trained model folder, with clear errors when either is missing."""
    folder = Path(folder)
    for name in (WEIGHTS, MODEL_CONFIG):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} not found: train the model first (`semid train ... --out RUN`)")
    return artifacts.read_json(folder / MODEL_CONFIG), artifacts.read_with(folder / WEIGHTS, _tensors)


def _tensors(path: str) -> dict[str, torch.Tensor]:
    """A safetensors file as torch tensors (``safe_open`` loads torch on use only, so the command
    line, which takes run-folder locks through this module, starts without it)."""
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def unlock(fd: int) -> None:
    os.ftruncate(fd, 0)  # the holder's line goes with the lock (a killed holder's stays, naming a gone process)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
