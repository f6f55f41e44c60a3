"""The ID stage at catalogue scale: ``semid ids train`` on 1M and 10M items with ``train_sample``.

For each size a run folder gets ``embed/item_embeddings.npy`` written chunk by chunk (synthetic
384-d unit vectors: one of 256 random directions at each of three scales, plus noise; never the
whole matrix in memory);
then, in a fresh subprocess (its peak RSS its own), :func:`semid.ids.train.run` fits residual
k-means (3 × 256) on a sample of ``--sample`` items and codes every item from the memory-mapped
matrix in 65,536-row chunks, adds the collision code and writes the Parquet and CSV tables.
Reported: wall seconds of the stage (including hashing the input for the manifest), items/s,
the peak heap (``RssAnon``, sampled every 50 ms: the process's own memory) and the peak RSS
(which also counts the pages of the memory-mapped matrix that were read, page cache the kernel
takes back under pressure) against the matrix's size on disk, the collisions and the uniqueness
of the IDs. The synthetic vectors are not real embeddings: their collision counts say nothing
about real catalogues, only that the collision pass copes.

The baseline, measured in the same run at the smallest size only: the same stage without
``train_sample`` (the whole matrix read into memory and the model fitted on every item).

Usage: ``python benchmarks/bench_ids_scale.py [--sizes 1000000,10000000] [--sample 100000] [--workdir /tmp/semid-ids-scale]``.
Figures go to ``benchmarks/results/ids_scale.json`` and ``ids_scale.md``; the work folder is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import record

DIM, CHUNK = 384, 250_000


def write_embeddings(path: Path, n: int, seed: int = 0) -> float:
    """Synthetic unit vectors into ``path`` chunk by chunk; returns the file's size in MiB."""
    rng = np.random.default_rng(seed)
    # three scales of 256 random directions, each vector one of each plus a little noise: a
    # catalogue with the nested structure residual quantisers find (not 1,024 tight clusters,
    # whose items would all share IDs)
    scales = [s * rng.normal(size=(256, DIM)).astype(np.float32) for s in (1.0, 0.5, 0.25)]
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        x = sum(c[rng.integers(0, 256, b - a)] for c in scales) + 0.1 * rng.standard_normal((b - a, DIM), dtype=np.float32)
        arr[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    arr.flush()
    del arr
    return path.stat().st_size / 2**20


def stage(run: str, sample: int | None) -> dict:
    """One ``ids train`` (run in its own process)."""
    from semid.ids import train
    from semid.ids.config import IdsConfig
    from semid.ids.table import load_semantic_ids

    cfg = IdsConfig(method="rqkmeans", levels=3, codebook_size=256, train_sample=sample, threads=1)
    peak = {"anon": 0.0}
    done = threading.Event()

    def watch() -> None:  # the process's own memory (RssAnon), not the memory-mapped matrix's pages
        while not done.wait(0.05):
            peak["anon"] = max(peak["anon"], anon_mib())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    folder = train.run(cfg, run, force=True)
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    codes, _, _ = load_semantic_ids(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {"items": len(codes), "fitted_on": manifest["fitted_on_items"], "wall_s": round(wall, 1),
            "items_per_s": round(len(codes) / wall), "unique_ids": bool(len(np.unique(codes, axis=0)) == len(codes)),
            "items_in_collision": manifest["collisions"]["items_in_collision"], "max_collision_code": manifest["max_dedup"],
            "peak_heap_mib": round(max(peak["anon"], anon_mib()), 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def anon_mib() -> float:
    """RssAnon of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/semid-ids-scale"))
    ap.add_argument("--stage", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stage:
        print(json.dumps(stage(a.stage[0], None if a.stage[1] == "none" else int(a.stage[1]))))
        return

    def child(run: Path, sample: int | None) -> dict:
        cmd = [sys.executable, __file__, "--stage", str(run), str(sample or "none")]
        env = os.environ | {"SEMID_PROGRESS": "0"}
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])

    rows = []
    sizes = [int(s) for s in a.sizes.split(",")]
    try:
        for n in sizes:
            run = a.workdir / f"n{n}"
            t0 = time.perf_counter()
            mib = write_embeddings(run / "embed" / "item_embeddings.npy", n)
            row = {"items": n, "embeddings_mib": round(mib), "generate_s": round(time.perf_counter() - t0, 1),
                   "sampled": child(run, a.sample)}
            if n == sizes[0]:
                row["baseline_whole_matrix"] = child(run, None)
                row["speedup"] = round(row["baseline_whole_matrix"]["wall_s"] / row["sampled"]["wall_s"], 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
            shutil.rmtree(run, ignore_errors=True)
    finally:
        shutil.rmtree(a.workdir, ignore_errors=True)
    table = [[f"{r['items']:,}", f"{r['embeddings_mib']:,}", mode, f"{m['fitted_on']:,}", m["wall_s"], f"{m['items_per_s']:,}",
              f"{m['peak_heap_mib']:,}", f"{m['peak_rss_mib']:,}", f"{m['items_in_collision']:,}", m["max_collision_code"], m["unique_ids"]]
             for r in rows for mode, m in (("train_sample", r["sampled"]), ("whole matrix (baseline)", r.get("baseline_whole_matrix"))) if m]
    record.write("ids_scale", f"semid ids train method=rqkmeans 3x256 train_sample={a.sample} threads=1 on synthetic {DIM}-d unit vectors "
                 "(256 directions at each of 3 scales + noise), the matrix memory-mapped; baseline: the same stage fitted on every item",
                 rows, ["items", "matrix on disk MiB", "mode", "fitted on", "wall s", "items/s", "peak heap MiB", "peak RSS MiB",
                        "items in collisions", "max collision code", "unique IDs"], table)


if __name__ == "__main__":
    main()
