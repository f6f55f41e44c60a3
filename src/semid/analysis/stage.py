"""``semid analyze``: case studies, failure analysis and code meanings of a trained run.

    semid analyze runs/beauty --models tiger,sasrec-ce --users 20     # → runs/beauty/analysis/

Reads what ``semid evaluate`` stored (each model's ``ranks.parquet``, checked against the model
folder it scored) and asks the models, through the serving API (:func:`semid.serve.api.load`),
only for what ranks.parquet lacks: the sampled users' lists and every user's top-1 item, in
batches. Writes ``cases.{json,md}``, ``failures.{json,md,png}``, ``codes.{json,md}``,
``code_map.png`` and ``manifest.json`` (reused while settings and inputs are unchanged).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from semid.analysis import cases, codes, failures, report
from semid.core import artifacts
from semid.core.config import StageConfig
from semid.core.errors import ConfigError, DataError
from semid.core.log import log, progress
from semid.core.run import MODEL_CONFIG, RunFolder, reuse, stale_inputs
from semid.evaluate.stage import EvaluateConfig, metrics_name, ranks_name, read_ranks
from semid.experiments.table import PROTOCOLS
from semid.ids.analyze import catalogue
from semid.serve.api import LoadedRun, Query, load

DEPTH = EvaluateConfig().beam_size  # the beam (and list length) metrics.json / ranks.parquet were scored with


class AnalyzeConfig(StageConfig):
    models: list[str] = Field(default_factory=lambda: ["tiger", "sasrec-ce"], min_length=1,
                              description="model folders; the first two are compared as A and B")
    users: int = Field(20, ge=1, description="users in the case studies")
    seed: int = Field(0, description="seed of the case studies' sample and of the map")
    split: Literal["test", "val"] = Field("test", description="the split whose ranks are analysed")
    protocol: Literal["kept", "removed"] = Field("kept", description="the history's items kept in the lists (TIGER's "
                                                 "protocol, ranks.parquet's rank) or removed (rank_history_removed)")
    k: int = Field(10, ge=1, le=DEPTH, description="list length of hits and case studies")
    top_codes: int = Field(20, ge=1, description="largest first- and second-level prefixes described")
    top_words: int = Field(8, ge=1, description="distinctive words per prefix")
    map_items: int = Field(2000, ge=0, description="items in the t-SNE map (0: no map)")
    batch_users: int = Field(2048, ge=1, description="users per ranker call for the top-1 items")
    device: str = Field("cpu", description="cpu, or cuda")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (unset: as set)")
    ids: str | None = Field(None, description="Semantic-ID folder shown (unset: the one the models on Semantic IDs were "
                                              "trained on, or the run's only one)")


def evaluated(run: RunFolder, model: str, split: str) -> tuple[Path, Path]:
    """(metrics file, ranks file) of ``model`` on ``split``, checked: the model exists, was
    evaluated, and its files and the split are those the ranks were computed from."""
    folder = run.model_dir(model)
    if not (folder / MODEL_CONFIG).is_file():
        have = sorted(p.parent.name for p in run.models_root.glob(f"*/{MODEL_CONFIG}"))
        raise ConfigError(f"unknown model {model!r}: {run.models_root} holds {', '.join(have) or 'no trained model'}; "
                          "pass --models with those names")
    metrics = folder / metrics_name(EvaluateConfig(model=model, split=split))
    ranks = folder / ranks_name(metrics)
    command = f"semid evaluate --out {run} model={model}" + ("" if split == "test" else f" split={split}")
    if not ranks.is_file() or not metrics.is_file():
        raise DataError(f"{model} has no ranks on {split} ({ranks} is missing): run `{command}` first")
    recorded = artifacts.read_json(metrics).get("inputs") or {}
    stale = stale_inputs(recorded, {name: run.table_path(split) if name == "split" else folder / name for name in recorded})
    if stale:
        raise DataError(f"{ranks} is out of date: {', '.join(stale)} changed since it was written; run `{command} --force`")
    return metrics, ranks


def user_frame(split: pl.DataFrame, popularity: np.ndarray, ranks: dict[str, Path], column: str, run: RunFolder) -> pl.DataFrame:
    """One row per user of the split: target, history length, target popularity, each model's rank."""
    frame = split.select("user_id", "target", pl.col("history").list.len().alias("history_len"))
    frame = frame.with_columns(popularity=pl.Series(popularity[frame["target"].to_numpy()]))
    for m, path in ranks.items():
        r = read_ranks(path).select("user_id", pl.col("target").alias("_target"), pl.col(column).alias(f"rank_{m}"))
        frame = frame.join(r, on="user_id", how="left")
        if r.height != frame.height or not (frame["_target"] == frame["target"]).fill_null(False).all():
            raise DataError(f"{path} does not hold the split's users and targets ({r.height:,} rows for {frame.height:,} "
                            f"users): score it again with `semid evaluate --out {run} model={m} --force`")
        frame = frame.drop("_target")
    return frame


def top1(loaded: LoadedRun, model: str, histories: list[list[int]], exclude_history: bool, batch: int) -> np.ndarray:
    """Each user's first item (-1: empty list), through the API's batch path, users sorted by length."""
    order = np.argsort([len(h) for h in histories], kind="stable")
    items = np.full(len(histories), -1, dtype=np.int64)
    with progress(total=len(histories), desc=f"top-1 of {model}", unit="user") as bar:
        for a in range(0, len(order), batch):
            idx = order[a:a + batch]
            answers = loaded.answer([Query(model, histories[i], 1, exclude_history) for i in idx])
            items[idx] = [ans["items"][0]["item_id"] if ans["items"] else -1 for ans in answers]
            bar.update(len(idx))
    return items


def run(cfg: AnalyzeConfig, run_dir: Path | RunFolder, out: Path | None = None, *, force: bool = False) -> Path:
    """Write the analysis into ``out`` (default ``RUN/analysis``); returns the folder."""
    run = RunFolder(run_dir)
    out = Path(out) if out is not None else run.analysis
    models = list(dict.fromkeys(cfg.models))
    found = {m: evaluated(run, m, cfg.split) for m in models}
    loaded = load(run, models=models, depth=DEPTH, device=cfg.device, threads=cfg.threads, ids=cfg.ids)
    for m in models:
        if m not in loaded.models:
            raise DataError(f"model {m!r} cannot be loaded: {loaded.unavailable.get(m)}")
    cat = loaded.catalogue
    files = {"split": run.table_path(cfg.split), "train": run.table_path("train"), "items": run.table_path("items"),
             "semantic_ids": run.semantic_ids(cat.ids_name), "embeddings": run.embeddings}
    files |= {f"{m}/{p.name}": p for m, paths in found.items() for p in paths}
    inputs, settings = run.inputs(files), cfg.model_dump(mode="json")
    if reuse("analyze", out, settings, inputs, force=force):
        return out
    with artifacts.StageRun("analyze", out, settings, inputs, seed=cfg.seed) as stage:
        t0 = time.perf_counter()
        split = run.table(cfg.split)
        frame = user_frame(split, cat.popularity, {m: r for m, (_, r) in found.items()}, PROTOCOLS[f"history {cfg.protocol}"][1], run)
        exclude = cfg.protocol == "removed"
        histories, targets = split["history"].to_list(), frame["target"].to_numpy()
        for m in models:
            t = time.perf_counter()
            first = top1(loaded, m, histories, exclude, cfg.batch_users)
            shared = failures.shared_prefix(cat.codes[np.maximum(first, 0)], cat.codes[targets])
            frame = frame.with_columns(pl.Series(f"prefix_{m}", np.where(first >= 0, shared, -1)))
            stage.extra.setdefault("timings_s", {})[f"top1 {m}"] = round(time.perf_counter() - t, 1)
            log.info("analyze: top-1 of %s for %d users in %.0f s", m, len(histories), time.perf_counter() - t)
        fail = failures.analyze(frame, models, cat.codes.shape[1], cfg.k)
        sample = cases.sample_users(split, cfg.users, cfg.seed)
        ranks = {m: dict(zip(frame["user_id"].to_list(), frame[f"rank_{m}"].to_list())) for m in models}
        studies = cases.studies(loaded, sample, ranks, cfg.k, exclude)
        t = time.perf_counter()
        titles, cats = catalogue(run, len(cat))
        meaning = codes.analyze(np.load(run.embeddings), cat.codes, titles or cat.titles, cats, top=cfg.top_codes,
                                top_words=cfg.top_words, map_items=cfg.map_items, seed=cfg.seed, map_path=out / "code_map.png")
        stage.extra["timings_s"]["codes"] = round(time.perf_counter() - t, 1)
        meaning["ids"] = cat.ids_name
        protocol = f"history {cfg.protocol}: " + ("the history's items left out" if exclude else "the history's items may be listed")
        write(out, fail, studies, meaning, protocol, cfg)
        stage.outputs = [*OUTPUTS, *(["code_map.png"] if meaning["map"] else [])]
        stage.extra["timings_s"]["total"] = round(time.perf_counter() - t0, 1)
        stage.extra["summary"] = {"outcomes": fail.get("outcomes"), "overall": fail["overall"]}
    log.info("analyze: %.0f s → %s", stage.extra["timings_s"]["total"], out)
    return out


OUTPUTS = ["cases.json", "cases.md", "failures.json", "failures.md", "failures.png", "codes.json", "codes.md"]


def write(out: Path, fail: dict[str, Any], studies: list[dict[str, Any]], meaning: dict[str, Any], protocol: str,
          cfg: AnalyzeConfig) -> None:
    artifacts.write_json(out / "failures.json", fail | {"protocol": protocol})
    artifacts.write_text(out / "failures.md", report.failures_markdown(fail, protocol))
    report.plot_failures(fail, out / "failures.png")
    artifacts.write_json(out / "cases.json", {"protocol": protocol, "k": cfg.k, "seed": cfg.seed, "users": studies})
    artifacts.write_text(out / "cases.md", cases.markdown(studies, cfg.k, protocol))
    artifacts.write_json(out / "codes.json", meaning)
    artifacts.write_text(out / "codes.md", report.codes_markdown(meaning, meaning["ids"], cfg.top_codes))
