"""Embedding throughput: MiniLM (the bundled all-MiniLM-L6-v2) on a run's item texts, one process
against sentence-transformers' multi-process pool, through the stage's own path
(:func:`semid.embed.encode.embed_texts`: chunked, written to disk, cache off).

Each setting embeds the same first ``--n`` item texts (in item order) of ``--run``; texts/s (once
the model is loaded and the pool's processes are up: their start-up, paid once per run, is
reported apart) and the ratio to one process of one thread, measured in the same run. The settings:

* 1 process × 1 thread (the baseline, the stage's default);
* 1 process × 2 threads;
* 2 processes × 1 thread (``processes=2``).

With ``--accelerator gpu`` the settings are a GPU's, against fp16 at batch 64 (the stage's default
there): fp16 at batch 256 and 1,024, and fp32 at batch 256; each setting encodes the texts twice and
the second pass is timed (the first, also recorded, pays for kernels chosen per padded length).
Figures go to ``embed_gpu.json`` / ``.md``.

Usage: ``python benchmarks/bench_embed.py --run runs/beauty [--n 2000] [--accelerator gpu] [--model NAME_OR_FOLDER]``.
Figures go to ``benchmarks/results/embed.json`` and ``embed.md``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

import record
from semid.embed.config import EmbedConfig
from semid.embed.encode import embed_texts

SETTINGS = [("1 process × 1 thread", 1, 1), ("1 process × 2 threads", 1, 2), ("2 processes × 1 thread", 2, 1)]
# label, fp16, batch size
GPU_SETTINGS = [("fp16, batch 64 (default)", True, 64), ("fp16, batch 256", True, 256), ("fp16, batch 1,024", True, 1024),
                ("fp32, batch 256", False, 256)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/beauty")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--model", default=EmbedConfig().model, help="the encoder: the bundled MiniLM, a local folder or a hub name")
    a = ap.parse_args()
    items = pl.read_parquet(f"{a.run}/data/items.parquet").sort("item_id").head(a.n)
    texts = [t or "" for t in items["text"].to_list()]
    chars = sum(len(t) for t in texts) / len(texts)
    if a.accelerator == "gpu":
        return gpu(a, texts, chars)
    rows = []
    for label, processes, threads in SETTINGS:
        cfg = EmbedConfig(model=a.model, accelerator="cpu", cache=False, processes=processes, threads=threads, batch_size=a.batch_size)
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


def gpu(a, texts: list[str], chars: float) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: torch sees no GPU")
    name = f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    embed_texts(texts[:256], EmbedConfig(model=a.model, accelerator="gpu", cache=False))  # warm-up: CUDA context, kernels
    rows, ref = [], None
    for label, fp16, batch in GPU_SETTINGS:
        cfg = EmbedConfig(model=a.model, accelerator="gpu", cache=False, fp16=fp16, batch_size=batch)
        first = embed_texts(texts, cfg)[1]["texts_per_s"]  # untimed pass: this setting's kernels for every padded length
        emb, info = embed_texts(texts, cfg)
        emb = np.asarray(emb, dtype=np.float32)
        ref = emb if ref is None else ref
        # each setting must give the default's vectors, up to half precision
        rows.append({"setting": label, "fp16": fp16, "batch_size": batch, "texts": len(texts), "load_s": info["load_s"],
                     "encode_s": info["encode_s"], "texts_per_s": info["texts_per_s"],
                     "first_pass_texts_per_s": first, "max_abs_diff_to_default": round(float(np.abs(emb - ref).max()), 5)})
        print(rows[-1], flush=True)
    for r in rows:
        r["ratio_to_baseline"] = round(r["texts_per_s"] / rows[0]["texts_per_s"], 2)
    record.write("embed_gpu", f"{a.model} on the first {len(texts):,} item texts of {a.run} (mean {chars:.0f} characters), "
                 f"one {name}, through embed_texts with the cache off", rows,
                 ["setting", "texts", "encode s", "texts/s", "first pass texts/s", "ratio to fp16 × 64", "max |Δ| to fp16 × 64"],
                 [[r["setting"], f"{r['texts']:,}", r["encode_s"], r["texts_per_s"], r["first_pass_texts_per_s"], f"{r['ratio_to_baseline']}×",
                   r["max_abs_diff_to_default"]] for r in rows], note=f", {name}", gpu=name)


if __name__ == "__main__":
    main()
