"""``semid ids train``: learn Semantic IDs for every item of a run → ``RUN/ids/<method>-<L>x<K>/``.

    semid ids train --out runs/beauty                         # RQ-VAE 3 × 256 (TIGER)
    semid ids train --out runs/beauty method=rqkmeans

Folder: ``semantic_ids.parquet`` / ``.csv`` (item_id, code_1 … code_L, dedup), ``config.json`` +
``model.safetensors`` (rebuild the model from these alone), ``codebooks.safetensors``,
``train_curve.csv`` / ``.png`` (RQ-VAE), ``manifest.json``. The method comes from
:data:`semid.ids.methods.METHODS`.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from semid.core import artifacts
from semid.core.errors import ConfigError, DataError
from semid.core.log import log, progress
from semid.core.run import SEMANTIC_IDS, RunFolder, reuse
from semid.core.threads import threads
from semid.ids import dedup as dd
from semid.ids.codec import CODEBOOKS_FILE, CONFIG_FILE, MODEL_FILE, Codec
from semid.ids.collisions import unique_ids
from semid.ids.config import IdsConfig
from semid.ids.methods import METHODS
from semid.ids.report import plot_curve
from semid.ids.table import IDS_CSV, ids_table, write_table
from semid.sequences import sequences

ADDED_LATER = {"collisions": "extra_code", "train_sample": None}  # ID keys added after 0.1's first folders
CODE_CHUNK = 65_536  # rows coded at a time after a sampled fit

CURVE_CSV, CURVE_PNG = "train_curve.csv", "train_curve.png"
# what analyze and assign write into the folder: stale once the IDs are retrained
DERIVED = ("ids_report.json", "report.md", "code_usage.png", "coherence.png", "tsne.png", "assigned_ids.parquet",
           "assigned_ids.csv", "report.manifest.json", CURVE_CSV, CURVE_PNG)


def ids_dir(run: RunFolder | Path, cfg: IdsConfig) -> Path:
    """Folder of one ID model in a run: ``<run>/ids/<method>-<L>x<K>`` (or ``cfg.name``)."""
    return RunFolder(run).ids_dir(cfg.folder_name())


def trained(run_dir: Path | RunFolder, cfg: IdsConfig) -> IdsConfig:
    """``cfg`` when its folder holds trained IDs; when the user named no ID model (no method, shape or
    name given) and the run holds exactly one, that one's config; else a DataError naming what exists."""
    run = RunFolder(run_dir)
    if (ids_dir(run, cfg) / SEMANTIC_IDS).is_file():
        return cfg
    found = sorted(p.parent for p in run.ids_root.glob(f"*/{SEMANTIC_IDS}")) if run.ids_root.is_dir() else []
    named = {"method", "levels", "codebook_size", "name"} & cfg.model_fields_set
    if len(found) == 1 and not named:
        m = artifacts.load_manifest(found[0]) or {}
        keys = {k: v for k, v in m.get("config", {}).items() if k in IdsConfig.model_fields}
        return cfg.model_copy(update=keys | {"name": found[0].name})
    have = ", ".join(p.name for p in found) or "none"
    raise DataError(f"{ids_dir(run, cfg)} holds no Semantic IDs (trained here: {have}): run `semid ids train --out {run}` "
                    "with the same settings, or name the trained ones, e.g. method=rqkmeans or name=<folder>")


def fit(x: np.ndarray, cfg: IdsConfig, **data: Any) -> tuple[Codec, np.ndarray, list[dict[str, Any]]]:
    """Train the configured ID model on ``x`` [N, d]; returns it, the items' codes [N, L], the curve.
    ``data``: what a method beyond the embeddings needs (``sequences``: the training sequences)."""
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"the catalogue is empty or malformed: embeddings of shape {x.shape}")
    method = METHODS[cfg.method]
    with threads(cfg.threads or os.cpu_count()):
        if cfg.train_sample is None or cfg.train_sample >= len(x):
            # a memory map (the stage's read-only view of the .npy) is read whole here
            return method.fit(np.array(x, dtype=np.float32) if isinstance(x, np.memmap) else np.ascontiguousarray(x, dtype=np.float32),
                              cfg, **data)
        if method.needs_sequences:
            raise ConfigError(f"train_sample is not available for method={cfg.method} (its collaborative embeddings "
                              "come from the whole catalogue's sequences); leave train_sample unset")
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(x), cfg.train_sample, replace=False))
        log.info("ids: fitting on a sample of %d of %d items, then coding every item", len(pick), len(x))
        codec, _, curve = method.fit(np.ascontiguousarray(x[pick], dtype=np.float32), cfg, **data)
        return codec, code_all(codec, x), curve


def code_all(codec: Codec, x: np.ndarray, chunk: int = CODE_CHUNK) -> np.ndarray:
    """Every row's codes under the frozen ``codec``, ``chunk`` rows at a time (``x`` may be a
    memory map: only one chunk of embeddings is in memory)."""
    out = np.empty((len(x), codec.levels), dtype=np.int64)
    with progress(desc="ids: coding", total=len(x), unit="item") as bar:
        for a in range(0, len(x), chunk):
            out[a:a + chunk] = codec.codes(np.array(x[a:a + chunk], dtype=np.float32))  # one chunk in memory
            bar.update(min(chunk, len(x) - a))
    return out


def write_curve(curve: list[dict[str, Any]], folder: Path) -> list[str]:
    if not curve:
        return []
    keys = list(dict.fromkeys(k for point in curve for k in point))
    with artifacts.atomic_path(folder / CURVE_CSV) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(curve)
    plot_curve(curve, folder / CURVE_PNG)
    return [CURVE_CSV, CURVE_PNG]


def run(cfg: IdsConfig, run_dir: Path | RunFolder, *, force: bool = False) -> Path:
    """Train IDs for every item of the run (→ ``ids_dir(run, cfg)``); reuse when fresh."""
    run = RunFolder(run_dir)
    folder = ids_dir(run, cfg)
    emb_path = run.need(run.embeddings, "semid embed")
    uses_train = METHODS[cfg.method].needs_sequences
    inputs = run.inputs({"embeddings": emb_path} | ({"train": run.table_path("train")} if uses_train else {}))
    config = cfg.model_dump(mode="json", include=cfg.id_fields())
    # ID folders written before a key existed hold the same IDs when the key is at its default
    legacy = {k: v for k, v in config.items() if k not in ADDED_LATER or ADDED_LATER[k] != v}
    if reuse("ids", folder, config, inputs, force=force) or (
            legacy != config and reuse("ids", folder, legacy, inputs, force=force)):
        return folder
    x = np.load(emb_path, mmap_mode="r")  # read whole only when the fit needs every row (no train_sample)
    if x.ndim != 2 or len(x) == 0:
        raise DataError("the catalogue is empty: no item embeddings to learn IDs from", path=emb_path)
    for name in DERIVED:
        (folder / name).unlink(missing_ok=True)
    log.info("ids: training %s %d × %d on %d × %d embeddings", cfg.method, cfg.levels, cfg.codebook_size, *x.shape)
    with artifacts.StageRun("ids", folder, config, inputs, seed=cfg.seed) as stage:
        t0 = time.perf_counter()
        codec, codes, curve = fit(x, cfg, **({"sequences": sequences(run.table("train"))} if uses_train else {}))
        train_s = time.perf_counter() - t0
        full = unique_ids(codes, cfg.scheme(), codec=codec, x=x)
        moved = int((full[:, :-1] != codes).any(1).sum())
        write_table(ids_table(full[:, :-1], None if cfg.scheme() == "reencode" else full[:, -1]), folder / SEMANTIC_IDS)
        codec.save(folder)
        stage.outputs = [SEMANTIC_IDS, IDS_CSV, CONFIG_FILE, MODEL_FILE, CODEBOOKS_FILE, *write_curve(curve, folder)]
        collisions = dd.collision_stats(codes)
        stage.extra.update({"method": cfg.method, "levels": cfg.levels, "codebook_size": cfg.codebook_size,
                            "items": len(codes), "fitted_on_items": min(len(codes), cfg.train_sample or len(codes)),
                            "input_dim": int(x.shape[1]), "train_s": round(train_s, 3), "collision_scheme": cfg.scheme(),
                            "collisions": collisions, "max_dedup": int(full[:, -1].max()), "reencoded_items": moved,
                            "unique_after_dedup": int(len(np.unique(full, axis=0))) == len(codes)})
    log.info("ids: %s in %.1f s; %d items (%.2f%%) collide at L codes, largest group %d%s → %s",
             cfg.method, train_s, collisions["items_in_collision"], 100 * collisions["collision_share"],
             collisions["largest_group"], f"; {moved} re-encoded to their nearest free ID" if moved else "", folder)
    return folder
