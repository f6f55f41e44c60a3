"""Semantic IDs for the ranker, fitted WITHOUT the cold-start items.

The ID model (RQ-KMeans by default, or RQ-VAE) is fitted on the embeddings of the items seen
in training only; every other item gets its codes from the frozen codec, as a new item would in
production. Written to ``RUN/models/rank-ids/<method>-<L>x<K>/`` (``semantic_ids.parquet`` with a
``in_training`` column, the codec files, ``manifest.json``) and reused while fresh.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder, reuse
from semid.ids import train as ids_train
from semid.ids.config import IdsConfig
from semid.ids.table import ids_table
from semid.rank.config import RankIdsConfig

FILE = "semantic_ids.parquet"


def folder(run_dir: Path | RunFolder, cfg: RankIdsConfig) -> Path:
    return RunFolder(run_dir).model_dir("rank-ids") / f"{cfg.method}-{cfg.levels}x{cfg.codebook_size}"


def embeddings(run_dir: Path | RunFolder) -> np.ndarray:
    run = RunFolder(run_dir)
    return np.load(run.need(run.embeddings, "semid embed"))


def fit(run_dir: Path, cfg: RankIdsConfig, counts: np.ndarray, *, threads: int | None = None,
        force: bool = False) -> np.ndarray:
    """Codes [N, L] of every item, the ID model fitted on the items with ``counts > 0``."""
    run = RunFolder(run_dir)
    out = folder(run, cfg)
    emb_path = run.embeddings
    x = embeddings(run)
    if len(x) != len(counts):
        raise DataError(f"{len(x)} item embeddings but {len(counts)} items: re-run `semid embed`", path=emb_path)
    inputs = run.inputs({"embeddings": emb_path, "train": run.table_path("train")})
    config = cfg.model_dump(mode="json")
    if reuse("rank ids", out, config, inputs, force=force):
        df = pl.read_parquet(out / FILE).sort("item_id")
        return df.select([f"code_{i + 1}" for i in range(cfg.levels)]).to_numpy().astype(np.int64)
    seen = np.flatnonzero(counts > 0)
    if len(seen) < cfg.codebook_size:
        raise DataError(f"only {len(seen)} items seen in training, fewer than codebook_size={cfg.codebook_size}")
    icfg = IdsConfig(method=cfg.method, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed,
                     dedup=False, threads=threads, tsne_sample=0)
    log.info("rank ids: fitting %s %d × %d on the %d training items (of %d)", cfg.method, cfg.levels,
             cfg.codebook_size, len(seen), len(x))
    with artifacts.StageRun("rank-ids", out, config, inputs, seed=cfg.seed) as run:
        codec, fitted, _ = ids_train.fit(x[seen], icfg)
        codes = codec.codes(x)
        if not np.array_equal(codes[seen], fitted):
            raise DataError("the frozen codec does not reproduce the training items' codes")
        table = ids_table(codes, np.zeros(len(codes), np.int64)).drop("dedup")
        table = table.with_columns(pl.Series("in_training", counts > 0))
        with artifacts.atomic_path(out / FILE) as tmp:
            table.write_parquet(tmp)
        codec.save(out)
        run.outputs = [FILE]
        run.extra.update({"train_items": int(len(seen)), "items": int(len(x)),
                          "unique_sids": int(len(np.unique(codes, axis=0)))})
    return codes
