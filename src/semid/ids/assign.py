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
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder, check_folder, stale_inputs
from semid.core.threads import threads
from semid.embed.config import EmbedConfig
from semid.embed.encode import embed_texts
from semid.ids.collisions import unique_ids
from semid.ids.config import IdsConfig
from semid.ids.methods import load_codec
from semid.ids.table import has_extra_code, ids_table, load_semantic_ids, write_table
from semid.ids.train import ids_dir, trained

ASSIGNED = "assigned_ids.parquet"
READERS = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".jsonl": pl.read_ndjson, ".ndjson": pl.read_ndjson}


def read_new_items(source: Path, run: RunFolder) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings and key columns of new items (see the module's docstring for the formats)."""
    source = Path(source)
    if not source.is_file():
        raise DataError(f"{source} not found")
    suffix = source.suffix.lower()
    if suffix == ".npy":
        x = artifacts.read_with(source, np.load)
        if x.ndim != 2:
            raise DataError(f"expected a 2-D matrix [items, dim], got shape {x.shape}", path=source)
        return x, {"row": np.arange(len(x), dtype=np.int32)}
    if suffix == ".txt":
        df = pl.DataFrame({"text": [line.strip() for line in source.read_text().splitlines() if line.strip()]})
    elif suffix in READERS:
        df = artifacts.read_with(source, READERS[suffix])
    else:
        raise DataError("new items must come as .npy (embeddings), .parquet, .csv, .jsonl or .txt", path=source)
    keys = {"row": np.arange(df.height, dtype=np.int32)}
    for col in ("item_id", "asin", "id"):
        if col in df.columns:
            keys[col] = df[col].to_numpy()
    if df.height == 0:
        return np.zeros((0, 0), dtype=np.float32), keys
    if "embedding" in df.columns:
        try:
            return np.asarray(df["embedding"].to_list(), dtype=np.float32), keys
        except (ValueError, TypeError):
            raise DataError("the 'embedding' column must hold equal-length lists of numbers", path=source) from None
    col = "text" if "text" in df.columns else "title" if "title" in df.columns else None
    if col is None:
        raise DataError(f"no 'text', 'title' or 'embedding' column (columns: {', '.join(df.columns)})", path=source)
    manifest = artifacts.load_manifest(run.embed) or {}
    # run folders written before 0.2 name the accelerator "device"
    ecfg = {("accelerator" if k == "device" else k): v for k, v in manifest.get("config", {}).items()}
    x, _ = embed_texts([t or "" for t in df[col].to_list()], EmbedConfig(**ecfg))
    return x, keys


def catalogue_ids(keys: dict[str, Any], run: RunFolder, source: Path) -> np.ndarray:
    """Catalogue item_id of each new row whose ``asin`` (or ``id``) is already a catalogue item, else
    -1: such an item keeps its catalogue ID and never gets a second one. Duplicate keys are an error."""
    col = next((c for c in ("asin", "id") if c in keys), None)
    n = len(keys["row"])
    if col is None:
        return np.full(n, -1, dtype=np.int64)
    values = [str(v) for v in keys[col]]
    dups = sorted(v for v, k in Counter(values).items() if k > 1)
    if dups:
        raise DataError(f"{len(dups)} {col} value(s) appear more than once ({', '.join(dups[:5])}): each new item "
                        "must be listed once", path=source)
    items = run.table("items")
    index = dict(zip(items["asin"].cast(str).to_list(), items["item_id"].to_list()))
    return np.array([index.get(v, -1) for v in values], dtype=np.int64)


def folder_scheme(manifest: dict[str, Any]) -> str:
    """How the IDs of a trained folder were made unique (folders from before 0.3 used the extra code)."""
    config = manifest.get("config", {})
    return config.get("collisions", "extra_code") if config.get("dedup", True) else "none"


def run(cfg: IdsConfig, run_dir: Path | RunFolder, *, source: Path | None = None, output: Path | None = None) -> Path:
    """Map items to IDs with the frozen model of ``ids_dir(run, cfg)``.

    Without ``source`` the catalogue itself is re-assigned (a check: the codes must equal the
    trained ones). With ``source`` the new items get IDs whose extra code keeps them unique
    against the catalogue."""
    run = RunFolder(run_dir)
    cfg = trained(run, cfg)
    folder = ids_dir(run, cfg)
    fix = f"retrain them with `semid ids train --out {run} --force` (and the same settings)"
    manifest = check_folder("ids train", run.need(folder, "semid ids train"), fix)
    if stale_inputs(manifest.get("inputs", {}), {"embeddings": run.embeddings}):
        raise DataError(f"{folder} was trained on other item embeddings ({run.embeddings} changed since): {fix}")
    with threads(cfg.threads or os.cpu_count()):
        codec = load_codec(folder)
        existing, levels, _ = load_semantic_ids(folder)
        extra_code, scheme = has_extra_code(folder), folder_scheme(manifest)
        t0 = time.perf_counter()
        if source is None:
            x = np.load(run.need(run.embeddings, "semid embed"))
            full = unique_ids(codec.codes(x), scheme, codec=codec, x=x)
            same = float((full == existing).all(1).mean()) if len(full) == len(existing) else 0.0
            table = ids_table(full[:, :-1], full[:, -1] if extra_code else None)
            log.info("ids assign: %d catalogue items re-assigned; %.4f%% identical to the trained IDs", len(full),
                     100 * same)
        else:
            x, keys = read_new_items(source, run)
            if len(x) == 0:
                raise DataError("no new items to assign", path=source)
            known = catalogue_ids(keys, run, source)
            new = known < 0
            codes = np.empty((len(x), levels), dtype=np.int64)
            extra = np.empty(len(x), dtype=np.int64)
            codes[~new], extra[~new] = existing[known[~new], :levels], existing[known[~new], levels]
            clash = 0
            if new.any():
                raw = codec.codes(x[new])
                full = unique_ids(raw, scheme, codec=codec, x=x[new], existing=existing)
                codes[new], extra[new] = full[:, :-1], full[:, -1]
                clash = int(((extra[new] > 0) | (full[:, :-1] != raw).any(1)).sum())
            table = ids_table(codes, extra if extra_code else None, keys | {"catalogue_item_id": known.astype(np.int32)})
            log.info("ids assign: %d new items (%d share their first %d codes with a catalogue item or each other%s); "
                     "%d already in the catalogue keep their IDs", int(new.sum()), clash, levels,
                     "" if extra_code else ", moved to their nearest free ID", int((~new).sum()))
    output = Path(output) if output else folder / ASSIGNED
    write_table(table, output)
    log.info("ids assign: %.2f s → %s", time.perf_counter() - t0, output)
    return output
