"""``semid rank study``: the grid of Singh et al. (2024) on one run folder.

    semid rank study --config configs/rank_beauty.yaml --data-dir ../shared/data --out runs/beauty-holdout

Representations × table sizes × history on/off × seeds. ``hash``, ``bigram``, ``prefix`` and
``spm`` sweep the table sizes; ``unigram`` (L·K rows), ``unigram_dedup`` (its collision-free
reference, L·K + dedup rows) and ``dense`` (no table) have one size and run once per (history,
seed). Every cell trains a ranker and scores the same test lists; its record and per-event values
are cached in ``RUN/study/cells/`` (an interrupted study resumes). The per-seed per-event AUCs
behind every test go to ``RUN/study/auc_user.npz``; ``RUN/study/results.{md,csv,json}`` and plots
(see :mod:`semid.rank.report`).
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
from semid.evaluate.results import check_clean
from semid.ids.dedup import collision_stats, dedup_codes
from semid.rank import metrics as RM
from semid.rank import report, stage
from semid.rank.config import RankConfig, StudyConfig
from semid.rank.train import fit, score

SWEPT = ("hash", "bigram", "prefix", "spm")
STATISTICS = ("95% CI of each mean: t interval over seeds. Every Δ and test is on the per-list AUC (auc_user), "
              "per seed and test event: Δ = mean over seeds × events of A minus that of B; 95% CI and p_bootstrap "
              "from a paired bootstrap ({boot} resamples: test events drawn once for both models, each model's seeds "
              "drawn with replacement); p_permutation: sign-flip test on the per-event differences of seed means "
              "({perm} random sign patterns; it treats the trained networks as given); p_seeds: normal p of Δ over "
              "the bootstrap's standard error (it counts the seed spread); p_holm: Holm, over every comparison "
              "listed in the claims of this study, of the larger of p_permutation and p_seeds "
              "(the collision check is a family of its own); verdict 'better'/'worse' when p_holm < {alpha} and the "
              "CI excludes 0 (semid.evaluate.stats.verdict); p_ttest_seeds: paired t-test over seeds of the per-seed "
              "means, an extra column used by no verdict")


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
    """Table size a cell is reported at: T for swept methods, L·K for unigram and unigram_dedup
    (whose ``rows`` add its dedup rows), 0 for dense."""
    if cell.representation in ("unigram", "unigram_dedup"):
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
        command: str | None = None, results_root: Path | None = None, allow_dirty: bool = False) -> Path:
    """Run the whole study; returns ``RUN/study``. With ``results_root`` the run must come from a
    committed tree (checked first, not after the grid) unless ``allow_dirty``."""
    if results_root is not None:
        check_clean([artifacts.git_state()], allow_dirty)
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
    _save_events(out / "auc_user.npz", events, slices)
    t_stats = time.perf_counter()
    cmp = report.Comparisons(report.matrices(events, slices), n_boot=cfg.bootstrap, n_perm=cfg.permutations, seed=0)
    summary = report.summarize(records, cmp)
    claims = report.claims(cmp, cfg.alpha)
    collisions = {"sids": _sid_collisions(cfg, data, run_dir), **(report.collision_effect(cmp, cfg.alpha) or {})}
    log.info("rank study: paired tests in %.0f s", time.perf_counter() - t_stats)
    wall = round(time.perf_counter() - t_start, 1)
    doc = {"records": records, "summary": summary, "claims": claims, "collisions": collisions,
           "protocol": stage.protocol(cfg.rank) | {
               "grid": {"representations": cfg.representations, "table_sizes": cfg.table_sizes,
                        "histories": cfg.histories, "seeds": cfg.seeds},
               "split": _split(run_dir), "test_events": len(data.test), "cold_events": int(data.test.cold.sum()),
               "tail_events": int(data.test.tail.sum()), "train_events": int(len(data.train.item)),
               "tail_share": cfg.tail_share,
               "statistics": STATISTICS.format(boot=cfg.bootstrap, perm=cfg.permutations, alpha=cfg.alpha),
               "model": {"dim": cfg.rank.dim, "mlp": cfg.rank.mlp, "max_items": cfg.rank.max_items,
                         "epochs": cfg.rank.epochs, "lr": cfg.rank.lr, "batch_size": cfg.rank.batch_size}},
           "dataset": _split(run_dir).get("dataset"), "run_dir": str(run_dir),
           "hardware": artifacts.hardware() | {"torch_threads": cfg.rank.threads},
           "git": artifacts.git_state(), "versions": artifacts.package_versions(), "date": artifacts.now(),
           "config_hash": artifacts.fingerprint_value(cfg.model_dump(mode="json")),
           "wall_time_s": wall, "command": command, "reused_cells": reused,
           "cells_wall_s": round(sum(r["wall_s"] for r in records if r["slice"] == "all"), 1)}
    doc["full_run"] = _full_run(doc, out / "results.json")
    doc["invocation_wall_s"] = wall
    if doc["full_run"]:  # the study's cost: the wall time of the run that computed every cell
        doc["wall_time_s"] = doc["full_run"]["wall_time_s"]
    report.write(doc, out)
    if results_root is not None:
        dest = Path(results_root) / str(doc["dataset"] or run_dir.name) / "rank_study.json"
        artifacts.write_json(dest, doc)  # the whole file: `semid rank rerank` writes its own rerank.json
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


def _save_events(path: Path, events: dict[tuple, np.ndarray], slices: dict[str, np.ndarray]) -> None:
    """Per-list AUC of every test event for every cell (``<rep>|<T>|<history>|<seed>``) and the slice
    masks (``slice:<name>``): everything the paired tests read, to re-derive them."""
    arrays = {f"{r}|{t}|{h}|{s}": np.asarray(v) for (r, t, h, s), v in events.items()}
    arrays |= {f"slice:{k}": np.asarray(m, dtype=bool) for k, m in slices.items()}
    with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _sid_collisions(cfg: StudyConfig, data, run_dir: Path) -> dict[str, Any] | None:
    """How many items share their Semantic ID with another (all items; training items only)."""
    if not set(cfg.representations) & set(stage.SID_REPRESENTATIONS):
        return None
    codes = stage.sid_codes(cfg.rank, data, run_dir)
    seen = data.counts > 0
    return collision_stats(codes) | {"max_dedup": int(dedup_codes(codes).max(initial=0)),
                                     "training_items": collision_stats(codes[seen])}


def _split(run_dir: Path) -> dict[str, Any]:
    manifest = artifacts.load_manifest(RunFolder(run_dir).data) or {}
    conf = manifest.get("config", {})
    keys = ("dataset", "split", "holdout_items_share", "temporal_test_share", "temporal_val_share")
    return {k: conf.get(k) for k in keys}
