"""Reader for the output of the Spark job (:mod:`semid.data.spark_job`): its cleaned, k-cored
events (``events/*.parquet``, put back in file order) and the items of its metadata file.

The job's settings (k-core, deduplication, minimum rating) and its counts (events read, rows
dropped by reason) come with the source, so ``semid prepare --format spark`` records the
statistics of a run on the raw file; settings that contradict the job's are an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from semid.core import artifacts
from semid.core.errors import ConfigError, DataError
from semid.data.config import PrepareConfig
from semid.data.lines import Issues
from semid.data.readers import amazon, amazon_meta
from semid.data.source import ITEM_SCHEMA, Source
from semid.data.spark_job import EVENTS_DIR, JOB_FILE, ORDER


def job_of(path: Path) -> dict[str, Any]:
    file = Path(path) / JOB_FILE
    if not file.is_file():
        raise DataError(f"no {JOB_FILE} in {path}: it is not the output of the Spark job "
                        "(python -m semid.data.spark_job --out <folder> ...)", path=path)
    job = artifacts.read_json(file)
    missing = {"format", "source_events", "dropped_rows", "k_core", "dedup"} - set(job)
    if missing:
        raise DataError(f"{file} lacks {', '.join(sorted(missing))}: run the Spark job again")
    return job


def check_settings(cfg: PrepareConfig, job: dict[str, Any]) -> None:
    """Settings given to prepare must be those the job applied (it cannot undo its filtering)."""
    ran = {"user_k": job["k_core"]["users"], "item_k": job["k_core"]["items"], "dedup": job["dedup"],
           "min_rating": job.get("min_rating")}
    asked = {"user_k": cfg.resolved_k("spark")[0] if cfg.k_core is not None or cfg.user_k is not None else None,
             "item_k": cfg.resolved_k("spark")[1] if cfg.k_core is not None or cfg.item_k is not None else None,
             "dedup": cfg.dedup, "min_rating": cfg.min_rating}
    clash = [f"{k}={asked[k]} (the job: {ran[k]})" for k in ran if asked[k] is not None and asked[k] != ran[k]]
    if clash:
        raise ConfigError(f"the Spark job filtered the events with other settings: {', '.join(clash)}; "
                          "run the job again with these settings, or leave them out here")
    if cfg.missing_text == "drop":
        raise ConfigError("missing_text=drop must act before the k-core, which the Spark job ran without the "
                          "metadata: use missing_text=placeholder or missing_text=error")


def read_spark(path: Path, cfg: PrepareConfig) -> Source:
    path = Path(path)
    job = job_of(path)
    check_settings(cfg, job)
    files = sorted((path / EVENTS_DIR).glob("*.parquet"))
    if not files:
        raise DataError(f"no Parquet files in {path / EVENTS_DIR}: the Spark job did not finish", path=path)
    events = pl.scan_parquet(files).sort(list(ORDER), nulls_last=True).select("user", "item", "timestamp", "rating").collect()
    issues = Issues(cfg.strict)
    items = pl.DataFrame(schema=ITEM_SCHEMA)
    meta = job.get("meta")
    notes: dict[str, Any] = {"spark_job": {k: job[k] for k in ("reviews", "spark", "seconds", "k_core_rounds") if k in job},
                             "meta_file": Path(meta).name if meta else None}
    if meta:
        if not Path(meta).is_file():
            raise DataError(f"the metadata file the Spark job recorded is not here: {meta}", path=path / JOB_FILE)
        layout = amazon.AMAZON2018 if job["format"] == "amazon2018" else amazon.AMAZON2023
        items, meta_notes = amazon_meta.read_meta(Path(meta), layout, set(events["item"].unique().to_list()), issues,
                                                  amazon.BLOCK_BYTES)
        notes.update(meta_notes)
    notes["items_with_meta"] = items.height
    skipped = issues.counts
    for reason, n in (job.get("malformed_lines") or {}).items():
        if n:
            skipped[f"{reason} (Spark job)"] += int(n)
    upstream = {"source_events": int(job["source_events"]), "dropped_rows": dict(job["dropped_rows"]),
                "k_core": (int(job["k_core"]["users"]), int(job["k_core"]["items"])), "dedup": bool(job["dedup"])}
    return Source(events, items, [path / JOB_FILE, *files, *([Path(meta)] if meta else [])], skipped=skipped,
                  notes=notes, upstream=upstream)
