"""Collisions at L codes: TIGER's extra code against re-encoding to the nearest free code, per ID method.

    python benchmarks/bench_collisions.py --run runs/beauty-ids [--methods rqvae rqkmeans ...]

Each method is fitted once (as ``semid ids train`` does, seed 0, one thread) on the run's item
embeddings; its raw codes are then made unique both ways. Reported per scheme: items moved, the
quality of the IDs (reconstruction cosine, coherence of items sharing their first 2 codes, code usage at
the last level), how far moved items land (their squared quantization error after / before,
in the space the codebooks live in) and the seconds the scheme took, with the extra code as the
baseline of each ratio. Writes ``benchmarks/results/collisions.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from record import write
from semid.core.run import RunFolder
from semid.ids import analysis, train
from semid.ids import dedup as dd
from semid.ids.collisions import latent_of, residual, unique_ids
from semid.ids.config import IdsConfig


def quant_error(codec, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    books = np.asarray(codec.codebooks, dtype=np.float64)
    r = residual(latent_of(codec, x), books, codes, codes.shape[1])
    return (r * r).sum(1)


def one(method: str, x: np.ndarray) -> list[dict]:
    cfg = IdsConfig(method=method, levels=3, codebook_size=256, seed=0, threads=1)
    t0 = time.perf_counter()
    codec, raw, _ = train.fit(x, cfg)
    fit_s = time.perf_counter() - t0
    rows = []
    for scheme in ("extra_code", "reencode"):
        t0 = time.perf_counter()
        full = unique_ids(raw, scheme, codec=codec, x=x)
        secs = time.perf_counter() - t0
        codes = full[:, :-1]
        moved = np.flatnonzero((codes != raw).any(1))
        rep = analysis.summarize(x, full, cfg.codebook_size, codec.reconstruct(x, codes), None, 0,
                                 reencoded={"collisions": dd.collision_stats(raw), "reencoded_items": len(moved)})
        before, after = quant_error(codec, x[moved], raw[moved]), quant_error(codec, x[moved], codes[moved])
        rows.append({"method": method, "scheme": scheme, "fit_s": round(fit_s, 2), "scheme_s": round(secs, 3),
                     "items": len(x), "items_in_collision": rep["collisions"]["items_in_collision"],
                     "moved": len(moved), "moved_up_a_level": int((codes[moved, :-1] != raw[moved, :-1]).any(1).sum()),
                     "tokens_per_id": codes.shape[1] + (scheme == "extra_code"),
                     "max_extra_code": int(full[:, -1].max()),
                     "unique": len(np.unique(full, axis=0)) == len(x),
                     "recon_cosine": round(rep["reconstruction"]["mean_cosine"], 4),
                     "coherence_prefix_2": round(rep["coherence"]["prefix"][1]["mean_cosine"], 4),
                     "last_level_perplexity": round(rep["usage"][-1]["perplexity"], 1),
                     "moved_error_ratio": round(float(after.mean() / before.mean()), 3) if len(moved) else None})
    base = rows[0]
    for r in rows:
        r["scheme_s_ratio"] = round(r["scheme_s"] / max(base["scheme_s"], 1e-9), 1)
        r["recon_cosine_delta"] = round(r["recon_cosine"] - base["recon_cosine"], 4)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a run folder holding embed/item_embeddings.npy")
    ap.add_argument("--methods", nargs="+", default=["rqvae", "rqkmeans", "rqkmeans_balanced", "random"])
    args = ap.parse_args()
    x = np.load(RunFolder(args.run).need(RunFolder(args.run).embeddings, "semid embed"))
    rows = [r for m in args.methods for r in one(m, x)]
    head = ["method", "scheme", "tokens/ID", "items colliding", "moved (up a level)", "largest extra code", "unique",
            "recon. cosine (Δ)", "coherence, first 2 codes", "L3 perplexity", "moved items' error after/before",
            "seconds (× extra code)"]
    table = [[r["method"], r["scheme"], r["tokens_per_id"], r["items_in_collision"],
              f"{r['moved']} ({r['moved_up_a_level']})", r["max_extra_code"], r["unique"],
              f"{r['recon_cosine']:.4f} ({r['recon_cosine_delta']:+.4f})", f"{r['coherence_prefix_2']:.3f}",
              r["last_level_perplexity"], r["moved_error_ratio"] or "–", f"{r['scheme_s']:.2f} ({r['scheme_s_ratio']}×)"]
             for r in rows]
    write("collisions", f"Collisions at L codes on {args.run.name} ({len(x):,} items, 3 × 256, seed 0)", rows, head,
          table, note=", one thread per fit")


if __name__ == "__main__":
    main()
