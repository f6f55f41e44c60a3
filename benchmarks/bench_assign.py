"""Assigning Semantic IDs to 1,000,000 synthetic 384-d embeddings with a trained 3 × 256 RQ-VAE.

Each measurement runs in a fresh subprocess, so its peak RSS is its own:

* ``batched``: ``Codec.codes`` (the path ``semid ids assign`` takes: 65,536-row chunks through the
  encoder and the residual quantizer), then the extra code against the catalogue
  (``dedup_against``), over all N embeddings;
* ``naive``: one item at a time through the same frozen model (``model.codes(x[i:i+1])``), as a
  per-request loop would. It is timed on a subsample and **extrapolated** to N.

The model is ``runs/beauty/ids/rqvae-3x256`` when present (trained on Beauty's MiniLM
embeddings); otherwise one is trained here on synthetic data (``--train-steps``).

Usage: ``python benchmarks/bench_assign.py [--n 1000000] [--naive-sample 3000] [--model DIR]``.
Figures go to ``benchmarks/results/assign.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "assign.json"
DEFAULT_MODEL = ROOT / "runs" / "beauty" / "ids" / "rqvae-3x256"


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


BASE = ROOT / "runs" / "beauty" / "embed" / "item_embeddings.npy"
NOISE = 0.03  # per dimension: a noisy copy keeps cosine ≈ 0.85 with its source item


def synthetic(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors near real item embeddings (a random catalogue item plus Gaussian noise) when
    the Beauty embeddings are there, else isotropic Gaussian; built in chunks so no temporary
    copy of the whole matrix inflates the peak memory."""
    rng = np.random.default_rng(seed)
    base = np.load(BASE) if BASE.is_file() else None
    if base is not None and base.shape[1] != dim:
        base = None
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        chunk = rng.standard_normal((m, dim), dtype=np.float32)
        if base is not None:
            chunk = base[rng.integers(0, len(base), m)] + NOISE * chunk
        x[s:s + m] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return x


def synthetic_note(dim: int) -> str:
    if BASE.is_file() and np.load(BASE, mmap_mode="r").shape[1] == dim:
        return f"a random Beauty item embedding + N(0, {NOISE}²) per dimension, renormalised"
    return "isotropic Gaussian, normalised"


def worker(mode: str, model_dir: Path, n: int, sample: int, threads: int) -> dict:
    import torch

    from semid.core.threads import set_count
    from semid.ids.dedup import dedup_against
    from semid.ids.methods import load_codec
    from semid.ids.table import load_semantic_ids

    set_count(threads)
    codec = load_codec(model_dir)
    existing, _, _ = load_semantic_ids(model_dir)
    x = synthetic(n if mode == "batched" else sample, codec.input_dim)
    base = rss_mib()
    out = {"mode": mode, "threads": threads, "rss_with_inputs_mib": round(base, 1)}
    if mode == "batched":
        t0 = time.perf_counter()
        codes = codec.codes(x)
        t1 = time.perf_counter()
        extra = dedup_against(existing, codes)
        t2 = time.perf_counter()
        out |= {"items": n, "codes_s": round(t1 - t0, 2), "dedup_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
                "items_per_s": round(n / (t2 - t0)), "codes_items_per_s": round(n / (t1 - t0)),
                "max_extra_code": int(extra.max()), "distinct_ids": int(len(np.unique(np.c_[codes, extra], axis=0)))}
    else:
        model = codec.model
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(sample):
                model.codes(torch.from_numpy(x[i:i + 1]))
        dt = time.perf_counter() - t0
        out |= {"items_timed": sample, "timed_s": round(dt, 2), "items_per_s": round(sample / dt),
                "extrapolated_total_s": round(dt / sample * n), "extrapolated": True}
    out["peak_rss_mib"] = round(peak_mib(), 1)
    return out


def ensure_model(model_dir: Path | None, steps: int) -> tuple[Path, str]:
    if model_dir is None and (DEFAULT_MODEL / "config.json").is_file():
        return DEFAULT_MODEL, "RQ-VAE 3 × 256 trained on Beauty (12,101 MiniLM embeddings)"
    if model_dir is not None:
        return model_dir, f"RQ-VAE from {model_dir}"
    from semid.ids import stage
    from semid.ids.config import IdsConfig

    cfg = IdsConfig(steps=steps)
    folder = Path(tempfile.mkdtemp(prefix="bench_assign_")) / "rqvae-3x256"
    x = synthetic(20000, 384, seed=1)
    codec, codes, _ = stage.fit(x, cfg)
    from semid.ids.dedup import dedup_codes

    codec.save(folder)
    stage.write_table(stage.ids_table(codes, dedup_codes(codes)), folder / stage.IDS_FILE)
    return folder, f"RQ-VAE 3 × 256 trained here on 20,000 synthetic embeddings ({steps} steps)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=3000)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--train-steps", type=int, default=500)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure")
    ap.add_argument("--worker", choices=["batched", "naive"], default=None)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.n, args.naive_sample, int(args.threads))))
        return
    model_dir, model_note = ensure_model(args.model, args.train_steps)
    runs: dict[str, list[dict]] = {"batched": [], "naive": []}
    for threads in args.threads.split(","):
        for mode in ("batched", "naive"):
            cmd = [sys.executable, __file__, "--worker", mode, "--model", str(model_dir), "--n", str(args.n),
                   "--naive-sample", str(args.naive_sample), "--threads", threads]
            res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ | {"SEMID_PROGRESS": "0"})
            runs[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(mode, runs[mode][-1], flush=True)
    best_batched = min(runs["batched"], key=lambda r: r["total_s"])
    best_naive = min(runs["naive"], key=lambda r: r["extrapolated_total_s"])
    result = {
        "benchmark": "assign Semantic IDs to synthetic 384-d unit vectors",
        "n": args.n, "model": model_note, "inputs": synthetic_note(384),
        "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "note": "2-core CPU shared with other jobs"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "batched": runs["batched"], "naive_per_item_loop": runs["naive"],
        "speedup_best_vs_best": round(best_naive["extrapolated_total_s"] / best_batched["total_s"], 1),
        "notes": "naive loop timed on items_timed items and extrapolated to n (extrapolated_total_s); "
                 "peak_rss_mib is the worker's peak and includes the n × 384 float32 inputs (rss_with_inputs_mib)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
