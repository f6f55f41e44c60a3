"""``semid ids sweep``: train and analyse every (method, L, K) combination, one table out.

    semid ids sweep --out runs/beauty --methods rqkmeans,rqvae --levels 3,4,5 --sizes 256,512,1024

Each combination is an ordinary ID folder under ``<run>/ids/sweep/`` (reused when fresh, never
touching the main models in ``<run>/ids/``); the table goes to ``<run>/ids/sweep/sweep.md`` and
``sweep.csv``. GRID (Snap, 2025) reports 3 × 256 as the sweet spot for retrieval quality.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from semid.core import artifacts
from semid.core.log import log
from semid.core.run import RunFolder
from semid.ids import analysis
from semid.ids import analyze as ids_analyze
from semid.ids import train as ids_train
from semid.ids.config import IdsConfig
from semid.ids.methods import load_codec
from semid.ids.table import has_extra_code, load_semantic_ids

COLUMNS = ["method", "levels", "codebook_size", "train_s", "recon_cosine", "recon_mse", "min_used_share",
           "mean_perplexity", "collision_share", "largest_group", "max_dedup", "coherence", "random_pairs",
           "top_purity_l1", "next_item_l1", "next_item_lift_l1"]


def row_for(cfg: IdsConfig, run: RunFolder, x: np.ndarray, cats, pairs: dict[str, Any] | None = None) -> dict[str, Any]:
    folder = ids_train.run(cfg, run)
    codes_full, levels, size = load_semantic_ids(folder)
    codec = load_codec(folder)
    manifest = artifacts.load_manifest(folder) or {}
    rep = analysis.summarize(x, codes_full, size, codec.reconstruct(x, codes_full[:, :levels]), cats, cfg.seed,
                             reencoded=None if has_extra_code(folder) else manifest)
    pur = rep["category_purity"]
    rep["next_item"] = ids_analyze.behaviour(pairs or {}, codes_full[:, :levels])
    nxt = analysis.first_next_item(rep) or {}
    return {
        "method": cfg.method, "levels": levels, "codebook_size": size, "train_s": manifest.get("train_s"),
        "recon_cosine": rep["reconstruction"]["mean_cosine"], "recon_mse": rep["reconstruction"]["mse"],
        "min_used_share": min(u["used_share"] for u in rep["usage"]),
        "mean_perplexity": float(np.mean([u["perplexity"] for u in rep["usage"]])),
        "collision_share": rep["collisions"]["collision_share"], "largest_group": rep["collisions"]["largest_group"],
        "max_dedup": rep["collisions"]["max_dedup"],
        "coherence": " / ".join(f"{r['mean_cosine']:.3f}" for r in rep["coherence"]["prefix"]),
        "random_pairs": rep["coherence"]["random_pairs"],
        "top_purity_l1": pur["prefix"][0]["top_purity"] if pur else None,
        "next_item_l1": nxt.get("share"), "next_item_lift_l1": nxt.get("lift"),
    }


def run(base: IdsConfig, run_dir: Path | RunFolder, *, methods: list[str], levels: list[int], sizes: list[int]) -> Path:
    run = RunFolder(run_dir)
    x = np.load(run.need(run.embeddings, "semid embed"))
    _, cats = ids_analyze.catalogue(run, len(x))
    pairs = ids_analyze.next_item_pairs(ids_analyze.split_tables(run))  # read once for every combination
    rows = []
    t0 = time.perf_counter()
    for method in methods:
        for n_levels in levels:
            for size in sizes:
                cfg = base.model_copy(update={"method": method, "levels": n_levels, "codebook_size": size,
                                         "name": f"sweep/{method}-{n_levels}x{size}"})
                log.info("sweep: %s %d × %d", method, n_levels, size)
                rows.append(row_for(cfg, run, x, cats, pairs))
    out = run.ids_dir("sweep")
    out.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out / "sweep.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    artifacts.write_text(out / "sweep.md", markdown(rows, len(x)))
    log.info("sweep: %d combinations in %.0f s → %s", len(rows), time.perf_counter() - t0, out / "sweep.md")
    return out


def markdown(rows: list[dict[str, Any]], n_items: int) -> str:
    head = ["method", "L", "K", "train s", "recon cos", "min used", "mean ppl", "collide", "largest",
            "coherence by prefix", "all pairs", "purity@1", "next item@1 (val)"]
    lines = [f"# Semantic ID sweep ({n_items:,} items)", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * 3 + "---:|" * 6 + "---|---:|---:|---:|"]
    for r in rows:
        pur = f"{r['top_purity_l1']:.3f}" if r["top_purity_l1"] is not None else "–"
        nxt = analysis.next_item_text({"share": r["next_item_l1"], "lift": r["next_item_lift_l1"]})
        lines.append(f"| {r['method']} | {r['levels']} | {r['codebook_size']} | {r['train_s'] or 0:.1f} | "
                     f"{r['recon_cosine']:.3f} | {r['min_used_share']:.1%} | {r['mean_perplexity']:.0f} | "
                     f"{r['collision_share']:.2%} | {r['largest_group']} | {r['coherence']} | {r['random_pairs']:.3f} | {pur} | {nxt} |")
    return "\n".join(lines) + "\n"
