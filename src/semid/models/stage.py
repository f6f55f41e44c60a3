"""``semid train <kind>``: train any registered model on a run folder → ``RUN/models/<name>/``.

    semid train sasrec --out runs/beauty                 # SASRec, full-softmax CE (folder sasrec-ce)
    semid train tiger --out runs/beauty preset=paper
    semid train sid-gru --out runs/beauty --resume       # continue from checkpoints/last.ckpt

Every folder holds ``model.safetensors`` + ``config.json`` (kind, resolved config, model
arguments, parameter count, training summary) and ``manifest.json``; models on Semantic IDs add
``sid_codes.safetensors``; trained models add ``checkpoints/{last,best}.ckpt`` and
``logs/metrics.csv``. The folder is reused while its config and inputs are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from semid.core import artifacts
from semid.core.config import ModelConfig, lead_process
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import MODEL_CONFIG as CONFIG
from semid.core.run import SEMANTIC_IDS, WEIGHTS, RunFolder, check_folder, reuse, stale_inputs
from semid.core.threads import oversubscribed, threads
from semid.generative.folder import CODES, resolve_ids
from semid.models import registry

PENDING = "pending.json"  # the config of a training run under way; gone once it finished
# keys added after folders were trained (several processes, the sampled softmax, compile, label smoothing,
# TIGER's encoder input) are left out of a model's identity at their defaults, so folders trained before
# they existed stay up to date
ADDED_LATER = {"devices": 1, "num_nodes": 1, "strategy": "auto", "negatives": 0, "sampler": "uniform", "compile": False,
               "label_smoothing": 0.0, "members": 1, "encoder_input": "tokens"}
NOT_IDENTITY = {"loggers"}  # where curves are also sent does not change the model


def train(kind: str, cfg: ModelConfig, run_dir: Path | RunFolder, *, force: bool = False, resume: bool = False,
          ids: Path | None = None) -> Path:
    """Train (or count, or index) one model into ``RUN/models/<cfg.name>``; returns the folder.

    ``ids``: the Semantic-ID folder a model on Semantic IDs trains on when its config names none.
    """
    spec = registry.get(kind)
    run = RunFolder(run_dir)
    out = run.model_dir(cfg.name)
    config, inputs, ids_folder = _identity(spec, cfg, run, ids)
    if not resume and reuse(spec.kind, out, config, inputs, force=force):
        return out
    if not lead_process():  # a DDP worker (rank > 0): trains beside rank 0, which alone writes the folder
        if spec.trained:
            log.setLevel(logging.WARNING)
            with threads(cfg.threads):
                spec.train(cfg, run, out, resume=resume, ids=ids_folder)  # ends this process (semid.ddp.WorkerDone)
        return out
    unfinished = has_checkpoint(out) and (artifacts.load_manifest(out) or {}).get("status") != "complete"
    if unfinished and not resume and not force:
        raise DataError(f"{out / 'checkpoints'} holds an unfinished training run: continue it with --resume, or start "
                        "over with --force (which deletes its checkpoints)")
    with threads(cfg.threads) as n, artifacts.StageRun(spec.kind, out, config, inputs, seed=cfg.seed) as stage:
        if spec.trained and (crowded := oversubscribed(n)):
            log.warning("%s: %s", spec.kind, crowded)
        artifacts.write_json(out / PENDING, {"config": config, "inputs": inputs})
        started = artifacts.now()
        meta = spec.train(cfg, run, out, resume=resume, ids=ids_folder)
        meta["training"].setdefault("started", started)
        artifacts.write_json(out / CONFIG, {"kind": spec.kind, "config": config, **meta,
                                            "provenance": artifacts.provenance(config)})
        stage.outputs = [name for name in (WEIGHTS, CODES, CONFIG) if (out / name).is_file()]
        stage.extra["training"] = meta["training"]
        (out / PENDING).unlink()
    best = meta["training"].get("best_val_recall@10")
    log.info("%s: %s parameters, best validation Recall@10 %s, %.0f s → %s", spec.kind, f"{meta['params']:,}",
             "n/a" if best is None else f"{best:.4f}", meta["training"]["train_wall_s"], out)
    return out


def _identity(spec: registry.ModelSpec, cfg: ModelConfig, run: RunFolder, ids: Path | None) -> tuple[dict, dict, Path | None]:
    """(config, input fingerprints, Semantic-ID folder) that identify a training run."""
    files = {"train": run.table_path("train")}
    if spec.trained:
        files["val"] = run.table_path("val")
    if spec.needs_embeddings:
        files["embeddings"] = run.embeddings
    ids_folder = None
    if spec.needs_ids:
        ids_folder = resolve_ids(run, cfg.ids, ids)
        files["semantic_ids"] = ids_folder / SEMANTIC_IDS
    config = {k: v for k, v in cfg.model_dump(mode="json").items()
              if k not in NOT_IDENTITY and (k not in ADDED_LATER or ADDED_LATER[k] != v)}
    config |= {"ids_folder": ids_folder.name} if ids_folder else {}
    return config, run.inputs(files), ids_folder


def twin(kind: str, cfg: ModelConfig, run_dir: Path | RunFolder, *, ids: Path | None = None,
         taken: Collection[str] = ()) -> str | None:
    """The name of another finished model folder of this run that training ``cfg`` would reproduce:
    the same kind, every setting but the name equal (seed included) and the same inputs (data,
    embeddings, Semantic IDs by fingerprint). None when ``RUN/models/<cfg.name>`` is itself up to date,
    for untrained models, while the Semantic IDs it needs are not fitted, and when no folder
    qualifies. ``taken``: folders that other cells of the same run will write, never candidates
    (one of them may be retrained under another seed before this cell is scored). Lets a recipe
    score a folder another recipe trained instead of training an identical model again."""
    spec = registry.get(kind)
    run = RunFolder(run_dir)
    if not spec.trained or _ids_missing(spec, cfg, ids):
        return None
    config, inputs, _ = _identity(spec, cfg, run, ids)
    if artifacts.is_fresh(run.model_dir(cfg.name), config, inputs):
        return None
    return _twin_folder(spec, run, config, inputs, {*taken, cfg.name})


def _twin_folder(spec: registry.ModelSpec, run: RunFolder, config: dict, inputs: dict, skip: Collection[str]) -> str | None:
    """The first finished folder of ``run`` (none of ``skip``) trained as ``spec`` with ``config``
    (all but its name) on ``inputs``."""
    if not run.models_root.is_dir():
        return None
    want = {k: v for k, v in config.items() if k != "name"}
    for folder in sorted(p for p in run.models_root.iterdir() if p.is_dir() and p.name not in skip):
        manifest = artifacts.load_manifest(folder) or {}
        if manifest.get("stage") != spec.kind or manifest.get("status") != "complete":
            continue
        theirs = manifest.get("config") or {}
        if {k: v for k, v in theirs.items() if k != "name"} == want and artifacts.is_fresh(folder, {**config, "name": folder.name}, inputs):
            return folder.name
    return None


def state(kind: str, cfg: ModelConfig, run_dir: Path | RunFolder, *, ids: Path | None = None,
          twins: bool = True, taken: Collection[str] = ()) -> str:
    """What training ``cfg`` into ``RUN/models/<cfg.name>`` would do now, as an experiment runs it:
    ``done``, ``reuses <folder>`` (a twin; ``twins=False`` where none is looked for), ``continues its
    killed run``, ``trains``, or ``waits for earlier stages`` while the data, embeddings or Semantic
    IDs it needs do not exist yet."""
    spec, run = registry.get(kind), RunFolder(run_dir)
    if _ids_missing(spec, cfg, ids):
        return "waits for earlier stages"
    try:
        config, inputs, _ = _identity(spec, cfg, run, ids)
    except DataError:
        return "waits for earlier stages"
    if artifacts.is_fresh(run.model_dir(cfg.name), config, inputs):
        return "done"
    found = _twin_folder(spec, run, config, inputs, {*taken, cfg.name}) if twins and spec.trained else None
    if found:
        return f"reuses {found}"
    return "continues its killed run" if killed_run_of(kind, cfg, run, ids=ids) else "trains"


def _ids_missing(spec: registry.ModelSpec, cfg: ModelConfig, ids: Path | None) -> bool:
    """A model on Semantic IDs whose default ID folder ``ids`` (it names no other) is not fitted yet:
    until it is, any other ID folder of the run would be taken for it."""
    return spec.needs_ids and not getattr(cfg, "ids", None) and ids is not None and not (Path(ids) / SEMANTIC_IDS).is_file()


def has_checkpoint(out: Path, name: str = "*.ckpt") -> bool:
    """Whether a model folder holds a checkpoint ``name`` (a glob): in ``checkpoints/``, or in an
    ensemble's ``member<m>/checkpoints/``."""
    return any(out.glob(f"checkpoints/{name}")) or any(out.glob(f"member*/checkpoints/{name}"))


def killed_run_of(kind: str, cfg: ModelConfig, run_dir: Path | RunFolder, *, ids: Path | None = None) -> bool:
    """True when ``RUN/models/<cfg.name>`` holds an unfinished training run of exactly this config and
    these inputs (a run killed midway), which ``--resume`` continues."""
    run = RunFolder(run_dir)
    out = run.model_dir(cfg.name)
    if not (out / PENDING).is_file() or not has_checkpoint(out, "last.ckpt"):
        return False
    if (artifacts.load_manifest(out) or {}).get("status") == "complete":
        return False
    try:
        started = artifacts.read_json(out / PENDING)
    except DataError:
        return False
    config, inputs, _ = _identity(registry.get(kind), cfg, run, ids)
    return started == {"config": config, "inputs": inputs}


def trained_folder(run_dir: Path | RunFolder, name: str) -> tuple[registry.ModelSpec, dict]:
    """(spec, config.json) of ``RUN/models/<name>``, checked before anything scores with it: its
    files must be what training wrote, and the data (and Semantic IDs, embeddings) it was trained on
    must be the run's current ones. Otherwise a DataError says what changed and how to retrain."""
    run = RunFolder(run_dir)
    folder = run.model_dir(name)
    meta_file = folder / CONFIG
    if not meta_file.is_file():
        raise DataError(f"{meta_file} not found: train the model first (`semid train <kind> --out {run}`)")
    meta = artifacts.read_json(meta_file)
    spec = registry.get(str(meta.get("kind", name)))
    fix = (f"retrain it with `semid train {spec.kind} --out {run} --force` and the settings in its "
           "config.json (or let `semid compare` / `semid run` retrain what is stale)")
    manifest = check_folder("training", folder, fix)
    recorded = manifest.get("inputs", {})
    current = {"train": run.table_path("train")}
    if "val" in recorded:
        current["val"] = run.table_path("val")
    if "embeddings" in recorded:
        current["embeddings"] = run.embeddings
    if "semantic_ids" in recorded:
        current["semantic_ids"] = run.semantic_ids(str((meta.get("config") or {}).get("ids_folder")
                                                       or Path(str(meta.get("ids"))).name))
    stale = stale_inputs(recorded, current)
    if stale:
        raise DataError(f"{folder} was trained on other data: {', '.join(stale)} changed since (prepare, embed or "
                        f"ids train ran again), so its numbers would describe a different catalogue; {fix}")
    return spec, meta
