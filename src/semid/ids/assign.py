"""``semid ids assign``: IDs from the frozen ID model, for the catalogue (a check) or new items.

    semid ids assign --out runs/beauty                          # re-assign the catalogue
    semid ids assign --out runs/beauty --input new_items.csv    # new items, unique vs the catalogue

New items come as ``.npy`` embeddings, or as ``.parquet`` / ``.csv`` / ``.jsonl`` / ``.txt`` with
a ``text`` (else ``title``) column embedded with the run's embedding model, or an ``embedding``
column. Writes ``assigned_ids.parquet`` / ``.csv`` in the ID folder (or ``--to``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.embed.config import EmbedConfig
from semid.embed.encode import embed_texts
from semid.ids import dedup as dd
from semid.ids.config import IdsConfig
from semid.ids.methods import load_codec
from semid.ids.table import ids_table, load_semantic_ids, write_table
from semid.ids.train import ids_dir

ASSIGNED = "assigned_ids.parquet"
READERS = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".jsonl": pl.read_ndjson, ".ndjson": pl.read_ndjson}


def read_new_items(source: Path, run: RunFolder) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings and key columns of new items (see the module's docstring for the formats)."""
    source = Path(source)
    if not source.is_file():
        raise DataError(f"{source} not found")
    suffix = source.suffix.lower()
    if suffix == ".npy":
        x = np.load(source)
        if x.ndim != 2:
            raise DataError(f"expected a 2-D matrix [items, dim], got shape {x.shape}", path=source)
        return x, {"row": np.arange(len(x), dtype=np.int32)}
    if suffix == ".txt":
        df = pl.DataFrame({"text": [line.strip() for line in source.read_text().splitlines() if line.strip()]})
    elif suffix in READERS:
        df = READERS[suffix](source)
    else:
        raise DataError("new items must come as .npy (embeddings), .parquet, .csv, .jsonl or .txt", path=source)
    keys = {"row": np.arange(df.height, dtype=np.int32)}
    for col in ("item_id", "asin", "id"):
        if col in df.columns:
            keys[col] = df[col].to_numpy()
    if df.height == 0:
        return np.zeros((0, 0), dtype=np.float32), keys
    if "embedding" in df.columns:
        return np.asarray(df["embedding"].to_list(), dtype=np.float32), keys
    col = "text" if "text" in df.columns else "title" if "title" in df.columns else None
    if col is None:
        raise DataError(f"no 'text', 'title' or 'embedding' column (columns: {', '.join(df.columns)})", path=source)
    manifest = artifacts.load_manifest(run.embed) or {}
    # run folders written before 0.2 name the accelerator "device"
    ecfg = {("accelerator" if k == "device" else k): v for k, v in manifest.get("config", {}).items()}
    x, _ = embed_texts([t or "" for t in df[col].to_list()], EmbedConfig(**ecfg))
    return x, keys


def run(cfg: IdsConfig, run_dir: Path | RunFolder, *, source: Path | None = None, output: Path | None = None) -> Path:
    """Map items to IDs with the frozen model of ``ids_dir(run, cfg)``.

    Without ``source`` the catalogue itself is re-assigned (a check: the codes must equal the
    trained ones). With ``source`` the new items get IDs whose extra code keeps them unique
    against the catalogue."""
    run = RunFolder(run_dir)
    folder = ids_dir(run, cfg)
    with threads(cfg.threads or os.cpu_count()):
        codec = load_codec(folder)
        existing, levels, _ = load_semantic_ids(folder)
        t0 = time.perf_counter()
        if source is None:
            x = np.load(run.need(run.embeddings, "semid embed"))
            codes = codec.codes(x)
            same = float((codes == existing[:, :levels]).all(1).mean()) if len(codes) == len(existing) else 0.0
            table = ids_table(codes, dd.dedup_codes(codes) if cfg.dedup else np.zeros(len(codes), np.int64))
            log.info("ids assign: %d catalogue items re-assigned; %.4f%% identical to the trained IDs", len(codes),
                     100 * same)
        else:
            x, keys = read_new_items(source, run)
            if len(x) == 0:
                raise DataError("no new items to assign", path=source)
            codes = codec.codes(x)
            extra = dd.dedup_against(existing, codes) if cfg.dedup else np.zeros(len(codes), np.int64)
            table = ids_table(codes, extra, keys)
            log.info("ids assign: %d new items; %d share their first %d codes with a catalogue item",
                     len(codes), int((extra > 0).sum()), levels)
    output = Path(output) if output else folder / ASSIGNED
    write_table(table, output)
    log.info("ids assign: %.2f s → %s", time.perf_counter() - t0, output)
    return output
