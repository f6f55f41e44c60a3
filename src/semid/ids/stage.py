"""The Semantic ID stage: train an ID model on the item embeddings, assign IDs, analyse them.

    semid ids train --out runs/beauty                         # RQ-VAE 3 × 256 (TIGER)
    semid ids train --out runs/beauty method=rqkmeans
    semid ids assign --out runs/beauty --input new_items.csv  # frozen model, IDs unique vs catalogue
    semid ids analyze --out runs/beauty

Folder ``<run>/ids/<method>-<L>x<K>/``: ``semantic_ids.parquet`` / ``.csv`` (item_id, code_1 …
code_L, dedup), ``config.json`` + ``model.safetensors`` (rebuild the model from these alone),
``codebooks.safetensors``, ``train_curve.csv`` / ``.png`` (RQ-VAE), ``manifest.json``; after
``analyze`` also ``ids_report.json``, ``report.md`` and PNG plots.

For later stages: :func:`ids_dir` and :func:`load_semantic_ids`.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid import artifacts
from semid.errors import DataError
from semid.ids import dedup as dd
from semid.ids import random_ids, rqkmeans
from semid.ids.codec import CODEBOOKS_FILE, CONFIG_FILE, MODEL_FILE, Codec, from_rqvae, load_codec
from semid.ids.config import IdsConfig
from semid.log import log

STAGE_DIR = "ids"
IDS_FILE = "semantic_ids.parquet"
IDS_CSV = "semantic_ids.csv"
CURVE_CSV = "train_curve.csv"
CURVE_PNG = "train_curve.png"
ASSIGNED = "assigned_ids.parquet"
REPORT_FILES = ("ids_report.json", "report.md", "code_usage.png", "coherence.png", "tsne.png")


def ids_dir(run_dir: Path, cfg: IdsConfig) -> Path:
    """Folder of one ID model in a run: ``<run>/ids/<method>-<L>x<K>`` (or ``cfg.name``)."""
    return Path(run_dir) / STAGE_DIR / cfg.folder_name()


def load_semantic_ids(path: Path) -> tuple[np.ndarray, int, int]:
    """(codes [N, L+1] int64 in item_id order: L codes then the dedup code, L, K) of an ID folder
    or of its ``semantic_ids.parquet``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = folder / IDS_FILE if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"{file} not found: run `semid ids train` first")
    df = pl.read_parquet(file).sort("item_id")
    levels = sum(1 for c in df.columns if c.startswith("code_"))
    cols = [f"code_{i + 1}" for i in range(levels)] + ["dedup"]
    codes = df.select(cols).to_numpy().astype(np.int64)
    cfg_file = folder / CONFIG_FILE
    if cfg_file.is_file():
        size = int(artifacts.read_json(cfg_file)["codebook_size"])
    else:
        size = int(codes[:, :levels].max()) + 1
    return codes, levels, size


def fit(x: np.ndarray, cfg: IdsConfig) -> tuple[Codec, np.ndarray, list[dict[str, Any]]]:
    """Train the configured ID model on ``x`` [N, d]; returns it, the items' codes [N, L], the curve."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"the catalogue is empty or malformed: embeddings of shape {x.shape}")
    from semid.ids.train import threads_scope

    with threads_scope(cfg.threads):
        return _fit(x, cfg)


def _fit(x: np.ndarray, cfg: IdsConfig) -> tuple[Codec, np.ndarray, list[dict[str, Any]]]:
    d = x.shape[1]
    if cfg.method == "rqvae":
        from semid.ids.train import train_rqvae

        model, curve = train_rqvae(x, cfg)
        codec = from_rqvae(model)
        return codec, codec.codes(x), curve
    if cfg.method == "rqkmeans":
        books = rqkmeans.fit(x, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed, niter=cfg.kmeans_iters)
        codec = Codec("rqkmeans", d, cfg.levels, cfg.codebook_size, cfg.seed, books)
        return codec, codec.codes(x), []
    codes = random_ids.assign(x, levels=cfg.levels, codebook_size=cfg.codebook_size, seed=cfg.seed)
    books = random_ids.residual_means(x, codes, cfg.codebook_size)
    return Codec("random", d, cfg.levels, cfg.codebook_size, cfg.seed, books), codes, []


def ids_table(codes: np.ndarray, dedup: np.ndarray, keys: dict[str, Any] | None = None) -> pl.DataFrame:
    cols: dict[str, Any] = dict(keys) if keys else {"item_id": np.arange(len(codes), dtype=np.int32)}
    for level in range(codes.shape[1]):
        cols[f"code_{level + 1}"] = codes[:, level].astype(np.int32)
    cols["dedup"] = dedup.astype(np.int32)
    return pl.DataFrame(cols)


def write_table(df: pl.DataFrame, parquet: Path) -> None:
    with artifacts.atomic_path(parquet) as tmp:
        df.write_parquet(tmp)
    with artifacts.atomic_path(parquet.with_suffix(".csv")) as tmp:
        df.write_csv(tmp)


def write_curve(curve: list[dict[str, Any]], folder: Path) -> list[str]:
    if not curve:
        return []
    keys = list(dict.fromkeys(k for point in curve for k in point))
    with artifacts.atomic_path(folder / CURVE_CSV) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(curve)
    from semid.ids.report import plot_curve

    plot_curve(curve, folder / CURVE_PNG)
    return [CURVE_CSV, CURVE_PNG]


def _embeddings_path(run_dir: Path) -> Path:
    from semid.embed.encode import EMBEDDINGS, stage_dir

    path = stage_dir(run_dir) / EMBEDDINGS
    if not path.is_file():
        raise DataError(f"{path} not found: run `semid embed --out {run_dir}` first")
    return path


def train(cfg: IdsConfig, run_dir: Path, *, force: bool = False) -> Path:
    """Train IDs for every item of the run (→ ``ids_dir(run_dir, cfg)``); reuse when fresh."""
    folder = ids_dir(run_dir, cfg)
    emb_path = _embeddings_path(run_dir)
    inputs = artifacts.fingerprint_inputs({"embeddings": emb_path})
    config = cfg.model_dump(mode="json", include=cfg.id_fields())
    if not force and artifacts.is_fresh(folder, config, inputs):
        log.info("ids: %s is up to date (reused; --force to redo)", folder)
        return folder
    x = np.load(emb_path)
    if x.ndim != 2 or len(x) == 0:
        raise DataError("the catalogue is empty: no item embeddings to learn IDs from", path=emb_path)
    for name in (*REPORT_FILES, ASSIGNED, CURVE_CSV, CURVE_PNG):
        (folder / name).unlink(missing_ok=True)
    log.info("ids: training %s %d × %d on %d × %d embeddings", cfg.method, cfg.levels, cfg.codebook_size, *x.shape)
    with artifacts.StageRun("ids", folder, config, inputs, seed=cfg.seed) as stage:
        t0 = time.perf_counter()
        codec, codes, curve = fit(x, cfg)
        train_s = time.perf_counter() - t0
        dedup = dd.dedup_codes(codes) if cfg.dedup else np.zeros(len(codes), dtype=np.int64)
        write_table(ids_table(codes, dedup), folder / IDS_FILE)
        codec.save(folder)
        outputs = [IDS_FILE, IDS_CSV, CONFIG_FILE, MODEL_FILE, CODEBOOKS_FILE, *write_curve(curve, folder)]
        stage.outputs = outputs
        collisions = dd.collision_stats(codes)
        stage.extra.update({"method": cfg.method, "levels": cfg.levels, "codebook_size": cfg.codebook_size,
                            "items": len(codes), "input_dim": int(x.shape[1]), "train_s": round(train_s, 3),
                            "collisions": collisions, "max_dedup": int(dedup.max()),
                            "unique_after_dedup": int(len(np.unique(np.c_[codes, dedup], axis=0))) == len(codes)})
    log.info("ids: %s in %.1f s; %d items (%.2f%%) collide before the extra code, largest group %d → %s",
             cfg.method, train_s, collisions["items_in_collision"], 100 * collisions["collision_share"],
             collisions["largest_group"], folder)
    return folder


def read_new_items(source: Path, run_dir: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings and key columns of new items: a ``.npy`` matrix, or a table / text file whose
    ``text`` (else ``title``) column is embedded with the run's embedding model."""
    source = Path(source)
    if not source.is_file():
        raise DataError(f"{source} not found")
    suffix = source.suffix.lower()
    if suffix == ".npy":
        x = np.load(source)
        if x.ndim != 2:
            raise DataError(f"expected a 2-D matrix [items, dim], got shape {x.shape}", path=source)
        return x, {"row": np.arange(len(x), dtype=np.int32)}
    if suffix == ".txt":
        df = pl.DataFrame({"text": [line.strip() for line in source.read_text().splitlines() if line.strip()]})
    elif suffix == ".parquet":
        df = pl.read_parquet(source)
    elif suffix == ".csv":
        df = pl.read_csv(source)
    elif suffix in (".jsonl", ".ndjson"):
        df = pl.read_ndjson(source)
    else:
        raise DataError("new items must come as .npy (embeddings), .parquet, .csv, .jsonl or .txt", path=source)
    keys = {"row": np.arange(df.height, dtype=np.int32)}
    for col in ("item_id", "asin", "id"):
        if col in df.columns:
            keys[col] = df[col].to_numpy()
    if df.height == 0:
        return np.zeros((0, 0), dtype=np.float32), keys
    if "embedding" in df.columns:
        return np.asarray(df["embedding"].to_list(), dtype=np.float32), keys
    col = "text" if "text" in df.columns else "title" if "title" in df.columns else None
    if col is None:
        raise DataError(f"no 'text', 'title' or 'embedding' column (columns: {', '.join(df.columns)})", path=source)
    from semid.embed.config import EmbedConfig
    from semid.embed.encode import embed_texts
    from semid.embed.encode import stage_dir as embed_dir

    manifest = artifacts.load_manifest(embed_dir(run_dir)) or {}
    ecfg = EmbedConfig(**manifest.get("config", {}))
    x, _ = embed_texts([t or "" for t in df[col].to_list()], ecfg)
    return x, keys


def assign(cfg: IdsConfig, run_dir: Path, *, source: Path | None = None, output: Path | None = None) -> Path:
    """Map items to IDs with the frozen model of ``ids_dir(run_dir, cfg)``.

    Without ``source`` the catalogue itself is re-assigned (a check: the codes must equal the
    trained ones). With ``source`` the new items get IDs whose extra code keeps them unique
    against the catalogue. Writes ``assigned_ids.parquet`` / ``.csv`` (or ``output``)."""
    from semid.ids.train import threads_scope

    with threads_scope(cfg.threads):
        return _assign(cfg, run_dir, source, output)


def _assign(cfg: IdsConfig, run_dir: Path, source: Path | None, output: Path | None) -> Path:
    folder = ids_dir(run_dir, cfg)
    codec = load_codec(folder)
    existing, levels, _ = load_semantic_ids(folder)
    t0 = time.perf_counter()
    if source is None:
        x = np.load(_embeddings_path(run_dir))
        codes = codec.codes(x)
        same = float((codes == existing[:, :levels]).all(1).mean()) if len(codes) == len(existing) else 0.0
        table = ids_table(codes, dd.dedup_codes(codes) if cfg.dedup else np.zeros(len(codes), np.int64))
        log.info("ids assign: %d catalogue items re-assigned; %.4f%% identical to the trained IDs", len(codes), 100 * same)
    else:
        x, keys = read_new_items(source, run_dir)
        if len(x) == 0:
            raise DataError("no new items to assign", path=source)
        codes = codec.codes(x)
        extra = dd.dedup_against(existing, codes) if cfg.dedup else np.zeros(len(codes), np.int64)
        table = ids_table(codes, extra, keys)
        log.info("ids assign: %d new items; %d share their first %d codes with a catalogue item",
                 len(codes), int((extra > 0).sum()), levels)
    output = Path(output) if output else folder / ASSIGNED
    write_table(table, output)
    log.info("ids assign: %.2f s → %s", time.perf_counter() - t0, output)
    return output


def _catalogue(run_dir: Path, n: int) -> tuple[list[str] | None, list[list[str] | None] | None]:
    """Titles and category paths of the run's items (None when the prepared table is absent)."""
    from semid.data.prepare import stage_dir as data_dir

    path = data_dir(run_dir) / "items.parquet"
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


def analyze(cfg: IdsConfig, run_dir: Path, *, force: bool = False) -> Path:
    """Write ``ids_report.json``, ``report.md`` and PNG plots into the ID folder; reuse when fresh."""
    from semid.ids import analysis, report

    folder = ids_dir(run_dir, cfg)
    emb_path = _embeddings_path(run_dir)
    codes_full, levels, size = load_semantic_ids(folder)
    inputs = artifacts.fingerprint_inputs({"embeddings": emb_path, "semantic_ids": folder / IDS_FILE})
    settings = {"tsne_sample": cfg.tsne_sample, "top_words": cfg.top_words, "seed": cfg.seed}
    out = folder / "ids_report.json"
    if not force and out.is_file() and (folder / "report.md").is_file():
        old = artifacts.read_json(out)
        if old.get("inputs") == inputs and old.get("settings") == settings:
            log.info("ids analyze: %s is up to date (reused; --force to redo)", out)
            return folder
    t0 = time.perf_counter()
    x = np.load(emb_path)
    if len(x) != len(codes_full):
        raise DataError(f"{len(x)} embeddings but {len(codes_full)} Semantic IDs: re-run `semid ids train`", path=emb_path)
    codec = load_codec(folder)
    titles, cats = _catalogue(run_dir, len(x))
    rep = analysis.summarize(x, codes_full, size, codec.reconstruct(x, codes_full[:, :levels]), cats, cfg.seed)
    rep["method"] = codec.method
    if titles is not None:
        rep["code_meanings"] = analysis.code_meanings(x, codes_full[:, 0], titles, cats, cfg.top_words)
    report.plot_usage(rep["usage"], folder / "code_usage.png")
    report.plot_coherence(rep["coherence"], folder / "coherence.png")
    if cfg.tsne_sample > 0 and len(x) >= 10:
        rows, xy = analysis.tsne_map(x, cfg.tsne_sample, cfg.seed)
        report.plot_tsne(xy, codes_full[rows, 0], folder / "tsne.png")
        rep["tsne_items"] = len(rows)
    rep |= {"inputs": inputs, "settings": settings, "analyze_s": round(time.perf_counter() - t0, 3)}
    artifacts.write_json(out, rep)
    artifacts.write_text(folder / "report.md", report.markdown(rep, folder.name))
    log.info("ids analyze: usage %s; coherence %s vs random %.3f; %.1f s → %s/report.md",
             " / ".join(f"{u['used_share']:.0%}" for u in rep["usage"]),
             " / ".join(f"{r['mean_cosine']:.3f}" for r in rep["coherence"]["prefix"]),
             rep["coherence"]["random_pairs"], rep["analyze_s"], folder)
    return folder
