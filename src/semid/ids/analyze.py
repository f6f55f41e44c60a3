"""``semid ids analyze``: the quality report of trained Semantic IDs, written into their folder.

``ids_report.json`` (usage per level, collisions, coherence by shared prefix, category purity,
reconstruction, code meanings), ``report.md``, ``code_usage.png``, ``coherence.png``, ``tsne.png``;
``report.manifest.json`` records what the report was made from (reused while unchanged).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import SEMANTIC_IDS, RunFolder, reuse
from semid.ids import analysis, report
from semid.ids.config import IdsConfig
from semid.ids.methods import load_codec
from semid.ids.table import has_extra_code, load_semantic_ids
from semid.ids.train import ids_dir, trained

MANIFEST = "report.manifest.json"
OUTPUTS = ("ids_report.json", "report.md", "code_usage.png", "coherence.png")


def catalogue(run: RunFolder, n: int) -> tuple[list[str] | None, list[list[str] | None] | None]:
    """Titles and category paths of the run's items (None when the prepared table is absent)."""
    path = run.table_path("items")
    if not path.is_file():
        return None, None
    items = pl.read_parquet(path).sort("item_id")
    if items.height != n:
        raise DataError(f"{items.height} items but {n} Semantic IDs: re-run `semid ids train`", path=path)
    titles = items["title"].to_list() if "title" in items.columns else items["text"].to_list()
    cats = items["categories"].to_list() if "categories" in items.columns else None
    if cats is not None and not any(cats):
        cats = None
    return [t or "" for t in titles], cats


def split_tables(run: RunFolder) -> dict[str, Path]:
    """The run's train and validation tables that exist (next-item agreement reads them; test never)."""
    return {s: run.table_path(s) for s in ("train", "val") if run.table_path(s).is_file()}


def next_item_pairs(tables: dict[str, Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(item, next item) pairs: every consecutive pair of the training sequences, and each validation
    user's last history item → validation target; empty unless both tables are given."""
    if set(tables) != {"train", "val"}:
        return {}
    out = {}
    for split, path in tables.items():
        df = pl.read_parquet(path, columns=["history", "target"])
        if split == "val":
            df = df.filter(pl.col("history").list.len() > 0)
            out[split] = (df["history"].list.last().to_numpy().astype(np.int64), df["target"].to_numpy().astype(np.int64))
        else:
            out[split] = analysis.transitions(df["history"].to_list(), df["target"].to_list())
    return out


def behaviour(pairs: dict[str, tuple[np.ndarray, np.ndarray]], codes: np.ndarray) -> dict[str, Any] | None:
    """Next-item agreement of the IDs ``codes`` on each split's pairs; None without pairs."""
    return {split: {"pairs": len(prev), "prefix": analysis.next_item_agreement(codes, prev, nxt)}
            for split, (prev, nxt) in pairs.items()} or None


def run(cfg: IdsConfig, run_dir: Path | RunFolder, *, force: bool = False) -> Path:
    """Write the report into the ID folder of ``cfg``; reuse it when IDs, embeddings and settings are unchanged."""
    run = RunFolder(run_dir)
    cfg = trained(run, cfg)
    folder = ids_dir(run, cfg)
    emb_path = run.need(run.embeddings, "semid embed")
    codes_full, levels, size = load_semantic_ids(folder)
    splits = split_tables(run)
    inputs = run.inputs({"embeddings": emb_path, "semantic_ids": folder / SEMANTIC_IDS, **splits})
    settings = {"tsne_sample": cfg.tsne_sample, "top_words": cfg.top_words, "seed": cfg.seed}
    if reuse("ids analyze", folder, settings, inputs, force=force, manifest=MANIFEST):
        return folder
    with artifacts.StageRun("ids analyze", folder, settings, inputs, seed=cfg.seed, manifest=MANIFEST) as stage:
        t0 = time.perf_counter()
        x = np.load(emb_path)
        if len(x) != len(codes_full):
            raise DataError(f"{len(x)} embeddings but {len(codes_full)} Semantic IDs: re-run `semid ids train`",
                            path=emb_path)
        codec = load_codec(folder)
        titles, cats = catalogue(run, len(x))
        rep = analysis.summarize(x, codes_full, size, codec.reconstruct(x, codes_full[:, :levels]), cats, cfg.seed,
                             reencoded=None if has_extra_code(folder) else artifacts.load_manifest(folder))
        rep["method"] = codec.method
        rep["next_item"] = behaviour(next_item_pairs(splits), codes_full[:, :levels])
        if titles is not None:
            rep["code_meanings"] = analysis.code_meanings(x, codes_full[:, 0], titles, cats, cfg.top_words)
        report.plot_usage(rep["usage"], folder / "code_usage.png")
        report.plot_coherence(rep["coherence"], folder / "coherence.png")
        stage.outputs = list(OUTPUTS)
        if cfg.tsne_sample > 0 and len(x) >= 10:
            rows, xy = analysis.tsne_map(x, cfg.tsne_sample, cfg.seed)
            report.plot_tsne(xy, codes_full[rows, 0], folder / "tsne.png")
            rep["tsne_items"] = len(rows)
            stage.outputs.append("tsne.png")
        rep |= {"inputs": inputs, "settings": settings, "analyze_s": round(time.perf_counter() - t0, 3)}
        artifacts.write_json(folder / "ids_report.json", rep)
        artifacts.write_text(folder / "report.md", report.markdown(rep, folder.name))
    nxt = analysis.first_next_item(rep)
    log.info("ids analyze: usage %s; coherence %s vs random %.3f;%s %.1f s → %s/report.md",
             " / ".join(f"{u['used_share']:.0%}" for u in rep["usage"]),
             " / ".join(f"{r['mean_cosine']:.3f}" for r in rep["coherence"]["prefix"]),
             rep["coherence"]["random_pairs"],
             f" validation next item shares the first code {analysis.next_item_text(nxt)};" if nxt else "",
             rep["analyze_s"], folder)
    return folder
