"""The table of Semantic IDs: ``semantic_ids.parquet`` (+ ``.csv``) with ``item_id``, ``code_1`` …
``code_L`` and ``dedup`` (TIGER's extra code; absent when collisions were re-encoded and IDs are
L codes), read by every later stage through :func:`load_semantic_ids`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.run import SEMANTIC_IDS
from semid.ids.codec import CONFIG_FILE

IDS_CSV = "semantic_ids.csv"


def load_semantic_ids(path: Path) -> tuple[np.ndarray, int, int]:
    """(codes [N, L+1] int64 in item_id order: L codes then the dedup code, L, K) of an ID folder
    or of its ``semantic_ids.parquet``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = folder / SEMANTIC_IDS if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"{file} not found: run `semid ids train` first")
    df = artifacts.read_with(file, pl.read_parquet).sort("item_id")
    levels = sum(1 for c in df.columns if c.startswith("code_"))
    cols = [f"code_{i + 1}" for i in range(levels)] + (["dedup"] if "dedup" in df.columns else [])
    codes = df.select(cols).to_numpy().astype(np.int64)
    if "dedup" not in df.columns:  # IDs of L codes: the layout keeps a last column of zeros
        codes = np.hstack([codes, np.zeros((len(codes), 1), dtype=np.int64)])
    cfg_file = folder / CONFIG_FILE
    if cfg_file.is_file():
        size = int(artifacts.read_json(cfg_file)["codebook_size"])
    else:
        size = int(codes[:, :levels].max()) + 1
    return codes, levels, size


def has_extra_code(path: Path) -> bool:
    """Whether the IDs of a folder (or its ``semantic_ids.parquet``) carry TIGER's extra code (L+1
    tokens) rather than being unique at L codes."""
    path = Path(path)
    file = path / SEMANTIC_IDS if path.is_dir() else path
    return "dedup" in artifacts.read_with(file, pl.read_parquet_schema)


def ids_table(codes: np.ndarray, dedup: np.ndarray | None, keys: dict[str, Any] | None = None) -> pl.DataFrame:
    """The table of ``codes`` [N, L] and extra codes ``dedup`` [N] (None: IDs of L codes, no column)."""
    cols: dict[str, Any] = dict(keys) if keys else {"item_id": np.arange(len(codes), dtype=np.int32)}
    for level in range(codes.shape[1]):
        cols[f"code_{level + 1}"] = codes[:, level].astype(np.int32)
    if dedup is not None:
        cols["dedup"] = dedup.astype(np.int32)
    return pl.DataFrame(cols)


def write_table(df: pl.DataFrame, parquet: Path) -> None:
    """The table as Parquet and as CSV beside it, each written atomically."""
    with artifacts.atomic_path(parquet) as tmp:
        df.write_parquet(tmp)
    with artifacts.atomic_path(parquet.with_suffix(".csv")) as tmp:
        df.write_csv(tmp)
