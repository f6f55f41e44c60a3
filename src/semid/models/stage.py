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

from pathlib import Path

from semid.core import artifacts
from semid.core.config import ModelConfig
from semid.core.log import log
from semid.core.run import SEMANTIC_IDS, RunFolder, reuse
from semid.core.threads import threads
from semid.generative.folder import CODES, resolve_ids
from semid.models import registry
from semid.models.common import CONFIG, WEIGHTS


def train(kind: str, cfg: ModelConfig, run_dir: Path | RunFolder, *, force: bool = False, resume: bool = False,
          ids: Path | None = None) -> Path:
    """Train (or count, or index) one model into ``RUN/models/<cfg.name>``; returns the folder.

    ``ids``: the Semantic-ID folder a model on Semantic IDs trains on when its config names none.
    """
    spec = registry.get(kind)
    run = RunFolder(run_dir)
    out = run.model_dir(cfg.name)
    files = {"train": run.table_path("train")}
    if spec.trained:
        files["val"] = run.table_path("val")
    if spec.needs_embeddings:
        files["embeddings"] = run.embeddings
    ids_folder = None
    if spec.needs_ids:
        ids_folder = resolve_ids(run, cfg.ids, ids)
        files["semantic_ids"] = ids_folder / SEMANTIC_IDS
    inputs = run.inputs(files)
    config = cfg.model_dump(mode="json") | ({"ids_folder": ids_folder.name} if ids_folder else {})
    if not resume and reuse(spec.kind, out, config, inputs, force=force):
        return out
    with threads(cfg.threads), artifacts.StageRun(spec.kind, out, config, inputs, seed=cfg.seed) as stage:
        meta = spec.train(cfg, run, out, resume=resume, ids=ids_folder)
        artifacts.write_json(out / CONFIG, {"kind": spec.kind, "config": config, **meta})
        stage.outputs = [name for name in (WEIGHTS, CODES, CONFIG) if (out / name).is_file()]
        stage.extra["training"] = meta["training"]
    best = meta["training"].get("best_val_recall@10")
    log.info("%s: %s parameters, best validation Recall@10 %s, %.0f s → %s", spec.kind, f"{meta['params']:,}",
             "n/a" if best is None else f"{best:.4f}", meta["training"]["train_wall_s"], out)
    return out
