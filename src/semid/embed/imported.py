"""``semid embed --from FILE``: item embeddings computed elsewhere (a Ray Data or Spark job on a
cluster, a vendor's encoder) taken into a run as ``embed/item_embeddings.npy``.

The source is Parquet (one file or a folder of part files, as Ray and Spark write them) with an
``embedding`` column (a list or fixed-size list of numbers) and the item's ``item_id`` or
``asin`` (the run's ``data/items.parquet`` names both). Every catalogue item needs exactly one
embedding of one width, with finite values; anything else is an error that counts and names the
offenders. Rows are read in Arrow batches into a memory-mapped ``.npy`` file (memory holds one
batch, never the matrix), then normalised to unit length when ``normalize`` is on, and the file
takes its name atomically. Give ``model=`` the encoder the source used: new items (``semid ids
assign``, the service's ``/assign``) are embedded with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log, progress
from semid.core.run import RunFolder, reuse
from semid.embed.config import EmbedConfig

BATCH_ROWS = 65_536


def vectors(column: pa.Array, path: Path) -> np.ndarray:
    """float32 [n, d] of a list column (every row the same length, no nulls)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        raise DataError(f"the 'embedding' column holds {column.type}, not lists of numbers", path=path)
    if column.null_count:
        raise DataError(f"{column.null_count} rows have no embedding", path=path)
    lengths = np.diff(column.offsets.to_numpy()) if not pa.types.is_fixed_size_list(column.type) else \
        np.full(len(column), column.type.list_size)
    if len(lengths) and (lengths != lengths[0]).any():
        raise DataError(f"embeddings of different widths ({sorted(set(lengths.tolist()))[:5]})", path=path)
    width = int(lengths[0]) if len(lengths) else 0
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(len(column), width)


def run(cfg: EmbedConfig, run_dir: Path, source: Path, *, force: bool = False) -> Path:
    """Write ``source``'s embeddings into ``<run_dir>/embed`` in item order; reuse when unchanged."""
    run_folder = RunFolder(run_dir)
    out, dest, items_path = run_folder.embed, run_folder.embeddings, run_folder.table_path("items")
    source = Path(source)
    files = sorted(source.glob("**/*.parquet")) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise DataError("no Parquet file of embeddings here", path=source)
    # the config of `semid embed` (later stages and new items read it back), the source among the inputs
    config = cfg.model_dump(mode="json", exclude={"cache", "cache_dir", "threads", "processes", "chunk_size"})
    inputs = run_folder.inputs({"items": items_path, **{f"source:{f.relative_to(source) if source.is_dir() else f.name}": f
                                                          for f in files}})
    if reuse("embed", out, config, inputs, force=force):
        return out
    items = run_folder.table("items").sort("item_id")
    n = items.height
    if n == 0:
        raise DataError("the catalogue is empty: nothing to embed", path=items_path)
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    names = dataset.schema.names
    key = "item_id" if "item_id" in names else "asin" if "asin" in names else None
    if "embedding" not in names or key is None:
        raise DataError(f"the source needs an 'embedding' column and 'item_id' or 'asin' (it has: {', '.join(names)})",
                        path=source)
    index = None if key == "item_id" else {a: i for i, a in enumerate(items["asin"].cast(str).to_list())}
    partial = dest.with_name(dest.stem + ".partial.npy")
    out.mkdir(parents=True, exist_ok=True)
    try:
        with artifacts.StageRun("embed", out, config, inputs) as stage:
            dim = fill(dataset, key, index, n, partial, source, cfg.normalize)
            os.replace(partial, dest)
            stage.outputs = [dest.name]
            stage.extra.update({"model": cfg.model, "n_texts": n, "dim": dim, "imported_from": str(source),
                                "matched_by": key})
    finally:
        partial.unlink(missing_ok=True)  # gone after the rename; a failed import leaves nothing behind
    log.info("embed: %d × %d embeddings imported from %s → %s", n, dim, source, dest)
    return out


def fill(dataset: pads.Dataset, key: str, index: dict[str, int] | None, n: int, partial: Path, source: Path,
         normalize: bool) -> int:
    """Read the source batch by batch into the memory-mapped ``partial`` file (item order); check
    coverage; normalise; returns the width."""
    seen = np.zeros(n, dtype=bool)
    unknown = repeated = 0
    examples: list[str] = []
    matrix = None
    with progress(desc="import embeddings", total=dataset.count_rows(), unit="row") as bar:
        for batch in dataset.to_batches(columns=[key, "embedding"], batch_size=BATCH_ROWS):
            x = vectors(batch.column("embedding"), source)
            keys = batch.column(key).to_pylist()
            rows = np.array([-1 if k is None else k if index is None else index.get(str(k), -1) for k in keys],
                            dtype=np.int64).reshape(-1)
            bad = (rows < 0) | (rows >= n)
            unknown += int(bad.sum())
            examples += [str(k) for k, b in zip(keys, bad) if b][:5 - len(examples)]
            rows, x = rows[~bad], x[~bad]
            if matrix is None and len(x):
                matrix = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, x.shape[1]))
            if len(x) and x.shape[1] != matrix.shape[1]:
                raise DataError(f"embeddings of widths {matrix.shape[1]} and {x.shape[1]}", path=source)
            if not np.isfinite(x).all():
                raise DataError(f"non-finite values in the embeddings of {int((~np.isfinite(x).all(1)).sum())} rows",
                                path=source)
            repeated += int(seen[rows].sum()) + len(rows) - len(np.unique(rows))
            seen[rows] = True
            if len(x):
                matrix[rows] = x
            bar.update(batch.num_rows)
        missing = int((~seen).sum())
        problems = [f"{unknown} rows name no catalogue item (e.g. {', '.join(examples)})" if unknown else "",
                    f"{repeated} items have more than one row" if repeated else "",
                    f"{missing} of {n} catalogue items have no embedding (e.g. item_id "
                    f"{', '.join(map(str, np.flatnonzero(~seen)[:5]))})" if missing else ""]
    if any(problems):
        raise DataError("; ".join(p for p in problems if p) + f" (matched by {key})", path=source)
    if normalize:
        for a in range(0, n, BATCH_ROWS):
            block = matrix[a:a + BATCH_ROWS]
            matrix[a:a + BATCH_ROWS] = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
    matrix.flush()
    return int(matrix.shape[1])
