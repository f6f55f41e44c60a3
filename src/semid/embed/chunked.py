"""Embeddings for catalogues of millions of items: written to disk chunk by chunk, resumed after
the last finished chunk, and encoded by several processes when asked.

The matrix is a ``.npy`` file opened as a memory map (``<name>.partial.npy``) and filled one chunk
of ``chunk_size`` texts at a time (rows in item order); ``<name>.progress.json`` lists the finished
chunks and what they belong to (the cache key, the row count, the width, the chunk size). A run
that is killed and started again with the same texts and options encodes only the chunks not yet
listed; anything else starts over. When every chunk is done the file takes its final name by an
atomic rename, so a complete-looking file is always complete. Memory holds the texts and one
chunk of vectors, never the matrix.

``processes > 1`` starts sentence-transformers' multi-process pool
(:meth:`~sentence_transformers.SentenceTransformer.start_multi_process_pool`): one process per GPU
(``cuda:0``, ``cuda:1``, …) or that many CPU processes, each with ``threads`` threads; each chunk
is split among them and comes back in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.core import artifacts
from semid.core.log import log, progress


def dimension(model) -> int:
    return int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
               else model.get_sentence_embedding_dimension())


def encode_batches(model, texts: list[str], *, batch_size: int, normalize: bool, pool: Any = None, bar=None) -> np.ndarray:
    """Encode ``texts`` longest first (one shape per batch, peak memory early); rows keep input order.
    With a ``pool`` the batches go to its processes in one call."""
    out = np.empty((len(texts), dimension(model)), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    if pool is not None:
        vecs = model.encode([texts[i] for i in order], pool=pool, batch_size=batch_size, convert_to_numpy=True,
                            normalize_embeddings=normalize, show_progress_bar=False)
        out[order] = np.asarray(vecs, dtype=np.float32)
        if bar is not None:
            bar.update(len(texts))
        return out
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        vecs = model.encode([texts[i] for i in idx], batch_size=len(idx), convert_to_numpy=True,
                            normalize_embeddings=normalize, show_progress_bar=False)
        out[idx] = np.asarray(vecs, dtype=np.float32)
        if bar is not None:
            bar.update(len(idx))
    return out


def devices(device: str, processes: int) -> list[str]:
    """The pool's target devices: one per GPU up to ``processes``, or ``processes`` CPU workers."""
    if device.startswith("cuda"):
        return [f"cuda:{i}" for i in range(min(processes, max(torch.cuda.device_count(), 1)))]
    return ["cpu"] * processes


@contextlib.contextmanager
def pool(model, device: str, processes: int, threads: int | None) -> Iterator[Any]:
    """sentence-transformers' multi-process pool (None for one process), stopped on the way out."""
    if processes <= 1:
        yield None
        return
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads or 1)  # read by each spawned worker's torch
    try:
        handle = model.start_multi_process_pool(devices(device, processes))
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    try:
        yield handle
    finally:
        model.stop_multi_process_pool(handle)


def _paths(final: Path) -> tuple[Path, Path]:
    stem = final.name.removesuffix(".npy")
    return final.with_name(f"{stem}.partial.npy"), final.with_name(f"{stem}.progress.json")


def _resumable(partial: Path, progress_file: Path, want: dict[str, Any]) -> set[int] | None:
    """Chunks already written by an interrupted run of the same job, or None to start over."""
    if not (partial.is_file() and progress_file.is_file()):
        return None
    try:
        state = artifacts.read_json(progress_file)
    except (OSError, ValueError):
        return None
    if any(state.get(k) != v for k, v in want.items()):
        return None
    return {int(i) for i in state.get("done", [])}


def encode_to_file(model, texts: list[str], final: Path, *, key: str, chunk_size: int, batch_size: int,
                   normalize: bool, pool_handle: Any = None) -> dict[str, Any]:
    """Encode ``texts`` into the ``.npy`` file ``final`` (rows in input order), chunk by chunk,
    resuming an interrupted run; returns what was done (for the manifest)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f".{final.name}.lock"), "w") as lock:  # a dot file: never taken for an output
        # one writer per file: another run embedding the same texts into the shared cache waits,
        # then finds the finished file instead of writing the same partial file at the same time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_file() and np.load(final, mmap_mode="r").shape == (len(texts), dimension(model)):
            log.info("embed: %s was finished by another run meanwhile", final)
            return {"chunks": 0, "chunks_resumed": 0, "chunk_size": chunk_size, "finished_by_another_run": True}
        return _encode_locked(model, texts, final, key=key, chunk_size=chunk_size, batch_size=batch_size,
                              normalize=normalize, pool_handle=pool_handle)


def _encode_locked(model, texts: list[str], final: Path, *, key: str, chunk_size: int, batch_size: int,
                   normalize: bool, pool_handle: Any) -> dict[str, Any]:
    n, dim = len(texts), dimension(model)
    chunks = [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
    partial, progress_file = _paths(final)
    want = {"key": key, "rows": n, "dim": dim, "chunk_size": chunk_size}
    done = _resumable(partial, progress_file, want)
    if done is None:
        done = set()
        arr = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dim))
        artifacts.write_json(progress_file, {**want, "done": []})
    else:
        arr = np.lib.format.open_memmap(partial, mode="r+")
        log.info("embed: resuming %s: %d of %d chunks already written", partial, len(done), len(chunks))
    resumed = len(done)
    with progress(desc="embed", total=n, unit="text", initial=sum(b - a for i, (a, b) in enumerate(chunks) if i in done)) as bar:
        for i, (a, b) in enumerate(chunks):
            if i in done:
                continue
            arr[a:b] = encode_batches(model, texts[a:b], batch_size=batch_size, normalize=normalize, pool=pool_handle, bar=bar)
            arr.flush()
            done.add(i)
            artifacts.write_json(progress_file, {**want, "done": sorted(done)})
    del arr
    os.replace(partial, final)
    progress_file.unlink(missing_ok=True)
    return {"chunks": len(chunks), "chunks_resumed": resumed, "chunk_size": chunk_size}


def place(src: Path, dest: Path) -> None:
    """``dest`` becomes a copy of ``src`` (a hard link where the file system allows: no second
    copy of a large matrix; both are only ever replaced by renames, never written in place)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
