"""``semid rank study``: the grid of Singh et al. (2024) on one run folder.

    semid rank study --config configs/rank_beauty.yaml --data-dir ../shared/data --out runs/beauty-holdout

Representations × table sizes × history on/off × seeds. ``hash``, ``bigram``, ``prefix`` and
``spm`` sweep the table sizes; ``unigram`` (L·K rows) and ``dense`` (no table) have one size and
run once per (history, seed). Every cell trains a ranker and scores the same test lists; its
record and per-event values are cached in ``RUN/study/cells/`` (an interrupted study resumes).
Writes ``RUN/study/results.{md,csv,json}`` and plots (see :mod:`semid.rank.report`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from semid.core import artifacts
from semid.core.errors import ConfigError
from semid.core.log import log, progress
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.data import prepare
from semid.embed.config import EmbedConfig
from semid.embed.encode import run as embed
from semid.rank import metrics as RM
from semid.rank import report, stage
from semid.rank.config import RankConfig, StudyConfig
from semid.rank.train import fit, score

SWEPT = ("hash", "bigram", "prefix", "spm")


def cells(cfg: StudyConfig) -> list[RankConfig]:
    """Every (representation, table size, history, seed) cell, as ranker configs."""
    out = []
    for rep in cfg.representations:
        sizes = cfg.table_sizes if rep in SWEPT else [max(cfg.table_sizes)]
        for size in sizes:
            for hist in cfg.histories:
                for seed in cfg.seeds:
                    out.append(cfg.rank.model_copy(update={"representation": rep, "table_size": size,
                                                           "history": hist, "seed": seed}))
    return out


def nominal_size(cell: RankConfig) -> int:
    """Table size a cell is reported at: T for swept methods, L·K for unigram, 0 for dense."""
    if cell.representation == "unigram":
        return cell.ids.levels * cell.ids.codebook_size
    return 0 if cell.representation == "dense" else cell.table_size


def run_cell(cell: RankConfig, data, run_dir: Path, cache: Path, key: str,
             force: bool) -> tuple[list[dict], dict, bool]:
    """Records (one per slice), per-event arrays and whether they were reused from ``cache``."""
    rec_file, arr_file = cache / f"{key}.json", cache / f"{key}.npz"
    if not force and rec_file.is_file() and arr_file.is_file():
        with np.load(arr_file) as z:
            return artifacts.read_json(rec_file), {k: z[k] for k in z.files}, True
    t0 = time.perf_counter()
    model = stage.build(cell, data, run_dir)
    curve = fit(model, cell, data)
    scores = score(model, data.test)
    wall = time.perf_counter() - t0
    base = {"representation": cell.representation, "table_size": nominal_size(cell), "history": cell.history,
            "rows": model.rows, "params": model.num_params, "seed": cell.seed}
    records = [{**m, **base, "slice": name, "epochs": len(curve), "best_val_auc": max(p["val_auc"] for p in curve),
                "wall_s": round(wall, 2)} for name, m in stage.evaluate(scores, data.test).items()]
    arrays = RM.per_list(scores)
    cache.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(arr_file) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    artifacts.write_json(rec_file, records)
    return records, arrays, False


def run(cfg: StudyConfig, run_dir: Path, *, data_dir_: Path | None = None, force: bool = False,
        command: str | None = None, results_root: Path | None = None) -> Path:
    """Run the whole study; returns ``RUN/study``."""
    run_dir = Path(run_dir)
    t_start = time.perf_counter()
    symbols = cfg.rank.ids.levels * cfg.rank.ids.codebook_size
    if "spm" in cfg.representations and min(cfg.table_sizes) <= symbols:
        raise ConfigError(f"spm needs table sizes above its {symbols} single-code pieces (L·K); "
                          f"got table_sizes={cfg.table_sizes}")
    if cfg.prepare is not None:
        prepare.run(cfg.prepare, run_dir, data_dir=data_dir_)
        embed(EmbedConfig(threads=cfg.rank.threads or 1), run_dir)
    out = RunFolder(run_dir).study
    todo = cells(cfg)
    inputs = stage.split_inputs(run_dir)
    log.info("rank study: %d cells (%d representations, sizes %s, history %s, seeds %s) on %s", len(todo),
             len(cfg.representations), cfg.table_sizes, cfg.histories, cfg.seeds, run_dir)
    records: list[dict[str, Any]] = []
    events: dict[tuple, np.ndarray] = {}
    reused = 0
    with threads(cfg.rank.threads):
        data = stage.load_data(cfg.rank, run_dir, cfg.tail_share)
        for cell in progress(todo, desc="rank study", unit="cell"):
            key = artifacts.fingerprint_value({"cell": cell.model_dump(mode="json"), "inputs": inputs,
                                               "tail_share": cfg.tail_share})
            recs, arrays, was_cached = run_cell(cell, data, run_dir, out / "cells", key, force)
            records += recs
            reused += was_cached
            events[(cell.representation, nominal_size(cell), cell.history, cell.seed)] = arrays["auc_user"]
            a = next(r for r in recs if r["slice"] == "all")
            c = next(r for r in recs if r["slice"] == "cold")
            log.info("rank study: %-7s T=%-6d history=%-5s seed %d: AUC %.4f, cold %.4f, NDCG@10 %.4f (%.1f s)",
                     cell.representation, nominal_size(cell), cell.history, cell.seed, a["auc"], c["auc"],
                     a["ndcg@10"], a["wall_s"])
    slices = {"all": np.ones(len(data.test), bool), "cold": data.test.cold, "tail": data.test.tail}
    summary = report.summarize(records, events, slices, cfg.bootstrap, seed=0)
    claims = report.claims(summary)
    wall = round(time.perf_counter() - t_start, 1)
    doc = {"records": records, "summary": summary, "claims": claims,
           "protocol": stage.protocol(cfg.rank) | {
               "grid": {"representations": cfg.representations, "table_sizes": cfg.table_sizes,
                        "histories": cfg.histories, "seeds": cfg.seeds},
               "split": _split(run_dir), "test_events": len(data.test), "cold_events": int(data.test.cold.sum()),
               "tail_events": int(data.test.tail.sum()), "train_events": int(len(data.train.item)),
               "tail_share": cfg.tail_share,
               "statistics": "95% CI: t interval over seeds; paired tests vs hash: paired t-test over seeds "
                             f"(pooled AUC) and paired bootstrap over test events ({cfg.bootstrap} resamples) "
                             "of the per-list AUC averaged over seeds",
               "model": {"dim": cfg.rank.dim, "mlp": cfg.rank.mlp, "max_items": cfg.rank.max_items,
                         "epochs": cfg.rank.epochs, "lr": cfg.rank.lr, "batch_size": cfg.rank.batch_size}},
           "dataset": _split(run_dir).get("dataset"), "run_dir": str(run_dir),
           "hardware": artifacts.hardware() | {"torch_threads": cfg.rank.threads},
           "wall_time_s": wall, "command": command, "reused_cells": reused,
           "cells_wall_s": round(sum(r["wall_s"] for r in records if r["slice"] == "all"), 1)}
    doc["full_run"] = _full_run(doc, out / "results.json")
    doc["invocation_wall_s"] = wall
    if doc["full_run"]:  # the study's cost: the wall time of the run that computed every cell
        doc["wall_time_s"] = doc["full_run"]["wall_time_s"]
    report.write(doc, out)
    if results_root is not None:
        dest = Path(results_root) / str(doc["dataset"] or run_dir.name) / "rank_study.json"
        if dest.is_file() and "rerank" in (old := artifacts.read_json(dest)):
            doc["rerank"] = old["rerank"]  # written by `semid rank rerank --results`
        artifacts.write_json(dest, doc)
        log.info("rank study: results → %s", dest)
    log.info("rank study: %d cells in %.0f s → %s", len(todo), wall, out / "results.md")
    for c in claims:
        log.info("claim %s: %s", c["verdict"], c["claim"])
    return out


def _full_run(doc: dict[str, Any], previous: Path) -> dict[str, Any] | None:
    """Wall time of the latest invocation that computed every cell of this grid (carried over
    when cells are reused, e.g. to regenerate the report)."""
    if doc["reused_cells"] == 0:
        return {"wall_time_s": doc["wall_time_s"], "command": doc["command"], "cells": len(doc["records"]) // 3}
    if not previous.is_file():
        return None
    old = artifacts.read_json(previous)
    if old.get("protocol", {}).get("grid") != doc["protocol"]["grid"]:
        return None
    if "full_run" in old:
        return old["full_run"]
    # reports written before this field existed always came from a complete first run
    return {"wall_time_s": old.get("wall_time_s"), "command": old.get("command"), "cells": len(old["records"]) // 3}


def _split(run_dir: Path) -> dict[str, Any]:
    manifest = artifacts.load_manifest(RunFolder(run_dir).data) or {}
    conf = manifest.get("config", {})
    keys = ("dataset", "split", "holdout_items_share", "temporal_test_share", "temporal_val_share")
    return {k: conf.get(k) for k in keys}
