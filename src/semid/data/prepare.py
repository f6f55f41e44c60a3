"""The ``prepare`` stage: source files → ``<run>/data/`` (items, interactions, splits, stats).

    semid prepare --dataset beauty --data-dir ../shared/data
    semid prepare --format amazon2018 --path ~/amazon/Magazine_Subscriptions k_core=3

Outputs: ``items.parquet`` (item_id, asin, title, brand, categories, price, description, text),
``users.parquet`` (user_id, user), ``interactions.parquet`` (user_id, item_id, timestamp,
position), ``train/val/test.parquet`` (see :mod:`semid.data.split`), the same as CSV, and
``stats.json`` with counts, the sequence-length distribution and every dropped row by reason.

Two engines give the same outputs: ``memory`` (:func:`build`, the whole interaction table in
memory) and ``streaming`` (:mod:`semid.data.streaming`, Parquet files on disk and one range of
users at a time, for dumps of hundreds of millions of reviews); ``engine=auto`` streams raw
Amazon files over 256 MiB.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder
from semid.data import filtering, parts, split, streaming, summary
from semid.data.config import PrepareConfig
from semid.data.datasets import resolve
from semid.data.itemtext import add_text, has_any_text
from semid.data.readers import STREAM_READERS, get_reader, get_stream_reader
from semid.data.source import Source


def run(cfg: PrepareConfig, run_dir: Path, *, data_dir: Path | None = None, path: Path | None = None,
        force: bool = False) -> Path:
    """Prepare a dataset into ``<run_dir>/data``; reuse it when config and source files are unchanged."""
    out = RunFolder(run_dir).data
    fmt, folder, category = resolve(cfg.dataset, cfg.format, path, data_dir)
    if category and cfg.category is None:
        cfg = cfg.model_copy(update={"category": category})
    # the engine changes how, not what: outputs are the same, so it is left out of the fingerprint
    config = {**cfg.model_dump(mode="json", exclude={"engine"}), "format": fmt}
    k_user, k_item = cfg.resolved_k(fmt)
    old = artifacts.load_manifest(out)
    if old is not None and not force:
        inputs = _refingerprint(old.get("input_stats", {}))
        if inputs is not None and artifacts.is_fresh(out, config, inputs):
            log.info("prepare: %s is up to date (reused; --force to redo)", out)
            return out
        _refuse_other_dataset(old, cfg.dataset, fmt, RunFolder(run_dir))
    stream = _streams(cfg, fmt, folder)
    log.info("prepare: reading %s (%s format%s)", folder or "synthetic toy data", fmt, ", streaming" if stream else "")
    work = out / ".prepare-work"  # the streaming engine's files; a dot folder is never an output
    shutil.rmtree(work, ignore_errors=True)
    try:
        stream_reader = get_stream_reader(fmt) if stream else None
        source = stream_reader(folder, cfg, work / "events") if stream_reader else get_reader(fmt)(folder, cfg)
        inputs = {str(p): artifacts.fingerprint_file(p) for p in source.files}
        with artifacts.StageRun("prepare", out, config, inputs, seed=cfg.seed) as stage:
            if stream:
                if isinstance(source, Source):
                    source = streaming.from_source(source, work / "events")
                stats, tables = streaming.build(source, cfg, out, k_user, k_item, cfg.resolved_dedup(fmt), work)
                for name, table in tables.items():
                    log.info("prepare: writing %s", name)
                    parts.write(out, name, table, cfg.write_csv)
            else:
                dedup = cfg.resolved_dedup(fmt)
                if source.upstream:  # cleaned by the Spark job: its settings (checked by the reader) hold
                    (k_user, k_item), dedup = source.upstream["k_core"], source.upstream["dedup"]
                stats = build(source, cfg, out, k_user, k_item, dedup)
            stats["source"] = {"format": fmt, "folder": str(folder) if folder else None, "dataset": cfg.dataset,
                               "files": [str(p) for p in source.files]}
            artifacts.write_json(out / "stats.json", stats)
            stage.extra["input_stats"] = {str(p): _stat(p) | {"hash": inputs[str(p)]} for p in source.files}
            stage.extra["counts"] = {k: stats[k] for k in ("users", "items", "interactions")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("prepare: %d users, %d items, %d interactions → %s",
             stats["users"], stats["items"], stats["interactions"], out)
    return out


STREAM_BYTES = 256 << 20  # engine=auto streams raw files larger than this


def _streams(cfg: PrepareConfig, fmt: str, folder: Path | None) -> bool:
    """Whether to use the streaming engine (see :mod:`semid.data.streaming`)."""
    if cfg.engine != "auto":
        return cfg.engine == "streaming"
    if folder is None or fmt not in STREAM_READERS:
        return False
    folder = Path(folder)
    files = [folder] if folder.is_file() else [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
    return sum(f.stat().st_size for f in files) > STREAM_BYTES


def _refuse_other_dataset(old: dict[str, Any], dataset: str, fmt: str, run: RunFolder) -> None:
    """Preparing another dataset over a run folder whose later stages describe the old one is an
    error without --force (with it, those stages see changed data and refuse or rerun)."""
    was = old.get("config", {})
    same = was.get("dataset") == dataset and was.get("format") == fmt
    later = [p.name for p in (run.embed, run.ids_root, run.models_root) if p.is_dir()]
    if not same and later:
        raise DataError(f"{run} holds data of dataset {was.get('dataset')!r} ({was.get('format')}) and its "
                        f"{', '.join(later)} stages were built on it; preparing {dataset!r} ({fmt}) there would mix "
                        "two datasets. Use another --out, or --force to replace the data (embeddings, IDs and models "
                        "are then redone or refused as stale)")


def build(source, cfg: PrepareConfig, out: Path, k_user: int, k_item: int, dedup: bool) -> dict[str, Any]:
    dropped: Counter[str] = Counter()
    inter = source.interactions
    raw_events = inter.height
    if source.upstream:  # what the engine that cleaned the events first read and dropped
        raw_events = source.upstream["source_events"]
        dropped.update(source.upstream["dropped_rows"])
    if raw_events == 0:
        raise DataError("the source holds no interactions", path=source.files[0] if source.files else None)
    inter = filtering.drop_missing(inter, dropped)
    inter, user_names, item_names = filtering.encode(inter)
    source.interactions = None  # the string columns are no longer needed: free them early
    inter = filtering.filter_rating(inter, cfg.min_rating, dropped)
    inter = filtering.order_events(inter)
    if dedup:
        inter = filtering.dedup(inter, dropped)

    items = source.items.unique(subset=["asin"], keep="first", maintain_order=True)
    items = items.with_columns(has_any_text(items, cfg.text_template).alias("_has_text"))
    inter, text_stats = _missing_text(inter, items, item_names, cfg, dropped)
    inter = filtering.k_core(inter, k_user, k_item, dropped)
    if inter.height == 0:
        raise DataError(f"no interactions left after filtering ({dict(dropped)}); lower k_core or check the data")

    # final ids: users in order of first appearance, items in order of first use
    users = (inter.select(pl.col("user").alias("code")).unique(maintain_order=True).with_row_index("user_id")
                  .join(user_names, on="code", how="left", maintain_order="left"))
    item_ids = (inter.select(pl.col("item").alias("code")).unique(maintain_order=True).with_row_index("item_id")
                     .join(item_names, on="code", how="left", maintain_order="left"))
    inter = (inter.join(users.select(pl.col("code").alias("user"), "user_id"), on="user", how="left", maintain_order="left")
                  .join(item_ids.select(pl.col("code").alias("item"), "item_id"), on="item", how="left", maintain_order="left")
                  .with_columns(pl.int_range(pl.len()).over("user_id").alias("position"))
                  .select(pl.col("user_id").cast(pl.Int32), pl.col("item_id").cast(pl.Int32),
                          "timestamp", pl.col("position").cast(pl.Int32)))
    items = item_ids.select("item_id", "asin").join(items, on="asin", how="left", maintain_order="left")
    items = (add_text(items, cfg.text_template, cfg.text_sep, cfg.text_max_words)
                     .select(pl.col("item_id").cast(pl.Int32), "asin", "title", "brand", "categories",
                             "price", "description", pl.coalesce("text", pl.lit("item ") + pl.col("asin")).alias("text")))

    if cfg.split == "loo":
        train, val, test, split_info = split.leave_one_out(inter)
    else:
        train, val, test, split_info = split.temporal(inter, cfg.temporal_test_share, cfg.temporal_val_share,
                                                      cfg.temporal_cut)
    if cfg.holdout_items_share > 0:
        train, hold = split.hold_out_items(train, items.height, cfg.holdout_items_share, cfg.seed)
        split_info |= hold
    val, test = split.mark_cold(val, train), split.mark_cold(test, train)

    tables = {"items": items, "users": users.select(pl.col("user_id").cast(pl.Int32), pl.col("user").cast(pl.String)),
              "interactions": inter, "train": train, "val": val, "test": test}
    for name, df in tables.items():
        _write(out, name, df, cfg.write_csv)
    stats = _stats(source, raw_events, inter, items, tables, dropped, text_stats, split_info)
    stats["k_core"] = {"users": k_user, "items": k_item}
    stats["dedup"] = dedup
    return stats


def _missing_text(inter: pl.DataFrame, items: pl.DataFrame, item_names: pl.DataFrame, cfg: PrepareConfig,
                  dropped: Counter[str]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Apply the ``missing_text`` policy to items that are in the interactions but have no text.

    ``placeholder`` items get the text "item <asin>" when the final items table is built."""
    with_text = items.filter(pl.col("_has_text")).select("asin")
    used = inter.select(pl.col("item").unique().alias("code")).join(item_names, on="code", how="left")
    no_text = used.join(with_text, on="asin", how="anti")
    stats, drop = filtering.text_policy(no_text.height, no_text["asin"].sort().head(5).to_list(), cfg.missing_text)
    if not drop:
        return inter, stats
    keep = inter.join(no_text.select(pl.col("code").alias("item")), on="item", how="anti", maintain_order="left")
    dropped["item without text"] += inter.height - keep.height
    return keep, stats


def _stats(source, raw_events, inter, items, tables, dropped, text_stats, split_info) -> dict[str, Any]:
    ts = inter["timestamp"].drop_nulls()
    test = tables["test"]
    return summary.record(
        source, raw_events=raw_events, n_events=inter.height, n_items=items.height,
        lengths=summary.length_histogram(inter.group_by("user_id").len()["len"]),
        time_range=[int(ts.min()), int(ts.max())] if ts.len() else None,
        timestamps_missing=inter.height - ts.len(), dropped=dropped,
        items_filled=items.select(summary.filled(items.schema)).row(0, named=True), text_stats=text_stats,
        split_info=split_info, rows={n: tables[n].height for n in ("train", "val", "test")},
        cold={"val": tables["val"]["cold"].sum(), "test": test["cold"].sum(),
              "test_items": test.filter("cold")["target"].n_unique()})


def _write(out: Path, name: str, df: pl.DataFrame, csv: bool) -> None:
    with artifacts.atomic_path(out / f"{name}.parquet") as tmp:
        df.write_parquet(tmp)
    if csv:
        with artifacts.atomic_path(out / f"{name}.csv") as tmp:
            parts.flat_lists(df).write_csv(tmp)


def _stat(path: Path) -> dict[str, int]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _refingerprint(input_stats: dict[str, dict]) -> dict[str, str] | None:
    """Input fingerprints for the files a previous run read; only files whose size or mtime
    changed are hashed again. None when one of them is gone."""
    out = {}
    for p, old in input_stats.items():
        if not os.path.isfile(p):
            return None
        now = _stat(Path(p))
        out[p] = old["hash"] if now == {k: old[k] for k in ("size", "mtime_ns")} else artifacts.fingerprint_file(Path(p))
    return out

