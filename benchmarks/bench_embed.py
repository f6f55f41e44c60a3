"""Embedding throughput: MiniLM (the bundled all-MiniLM-L6-v2) on a run's item texts, one process
against sentence-transformers' multi-process pool, through the stage's own path
(:func:`semid.embed.encode.embed_texts`: chunked, written to disk, cache off).

Each setting embeds the same first ``--n`` item texts (in item order) of ``--run``; texts/s (once
the model is loaded and the pool's processes are up: their start-up, paid once per run, is
reported apart) and the ratio to one process of one thread, measured in the same run. The settings:

* 1 process × 1 thread (the baseline, the stage's default);
* 1 process × 2 threads;
* 2 processes × 1 thread (``processes=2``).

Usage: ``python benchmarks/bench_embed.py --run runs/beauty [--n 2000]``.
Figures go to ``benchmarks/results/embed.json`` and ``embed.md``.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

import record
from semid.embed.config import EmbedConfig
from semid.embed.encode import embed_texts

SETTINGS = [("1 process × 1 thread", 1, 1), ("1 process × 2 threads", 1, 2), ("2 processes × 1 thread", 2, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/beauty")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    items = pl.read_parquet(f"{a.run}/data/items.parquet").sort("item_id").head(a.n)
    texts = [t or "" for t in items["text"].to_list()]
    chars = sum(len(t) for t in texts) / len(texts)
    rows = []
    for label, processes, threads in SETTINGS:
        cfg = EmbedConfig(accelerator="cpu", cache=False, processes=processes, threads=threads, batch_size=a.batch_size)
        t0 = time.perf_counter()
        _, info = embed_texts(texts, cfg)
        wall = time.perf_counter() - t0
        rows.append({"setting": label, "processes": processes, "threads": threads, "texts": len(texts),
                     "pool_start_s": info["pool_start_s"], "encode_s": info["encode_s"], "texts_per_s": info["texts_per_s"],
                     "wall_s": round(wall, 1)})
        print(rows[-1], flush=True)
    base = rows[0]["texts_per_s"]
    for r in rows:
        r["ratio_to_baseline"] = round(r["texts_per_s"] / base, 2)
    record.write("embed", f"MiniLM (all-MiniLM-L6-v2, 384-d) on the first {len(texts):,} item texts of {a.run} "
                 f"(mean {chars:.0f} characters), CPU, batch {a.batch_size}, through embed_texts with the cache off", rows,
                 ["setting", "texts", "pool start s (once per run)", "encode s", "texts/s", "ratio to 1 × 1"],
                 [[r["setting"], f"{r['texts']:,}", r["pool_start_s"], r["encode_s"], r["texts_per_s"], f"{r['ratio_to_baseline']}×"]
                  for r in rows])


if __name__ == "__main__":
    main()
