"""Do collaborative Semantic IDs (``rqvae_cf``) group items that are bought together? An ID-level
check, not a recommendation result: for every ID folder of a run, the share of item pairs that
share their first code (and first two codes), for adjacent pairs of the **training** sequences
(what ``rqvae_cf`` was fitted on) and for **held-out** pairs (each validation user's last history
item and validation target, a transition no ID model saw), beside random pairs (the chance level),
collisions and code usage. Ratios are against the run's ``rqvae`` folder, measured in the same run.

Usage: ``python benchmarks/ids_collaborative.py --run runs/beauty-ids [--folders rqvae-3x256,rqvae_cf-3x256]``
→ ``benchmarks/results/ids_collaborative_<run name>.json`` (+ a Markdown table on stdout).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from semid.core import artifacts
from semid.core.run import RunFolder
from semid.ids.dedup import collision_stats
from semid.ids.table import load_semantic_ids
from semid.sequences import sequences

ROOT = Path(__file__).resolve().parents[1]


def adjacent_pairs(seqs: list[np.ndarray]) -> np.ndarray:
    pairs = np.concatenate([np.c_[s[:-1], s[1:]] for s in seqs if len(s) > 1])
    return pairs[pairs[:, 0] != pairs[:, 1]]


def agreement(codes: np.ndarray, pairs: np.ndarray, depth: int) -> float:
    return float((codes[pairs[:, 0], :depth] == codes[pairs[:, 1], :depth]).all(1).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--folders", help="ID folders under RUN/ids (default: every one)")
    args = ap.parse_args()
    run = RunFolder(args.run)
    names = args.folders.split(",") if args.folders else sorted(p.parent.name for p in run.ids_root.glob("*/semantic_ids.parquet"))
    pairs = adjacent_pairs(sequences(run.table("train")))
    val = run.table("val")
    held = np.c_[[h[-1] for h in val["history"].to_list()], val["target"].to_numpy()]
    held = held[held[:, 0] != held[:, 1]]
    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        codes, levels, _ = load_semantic_ids(run.ids_dir(name))
        shuffled = np.c_[rng.integers(len(codes), size=len(pairs)), rng.integers(len(codes), size=len(pairs))]
        rows.append({"ids": name, "pairs": len(pairs), "collision_share": collision_stats(codes[:, :levels])["collision_share"],
                     "level1_codes_used": int(len(np.unique(codes[:, 0]))),
                     **{f"pairs_same_prefix{d}": agreement(codes, pairs, d) for d in (1, 2)},
                     "heldout_pairs": len(held), **{f"heldout_same_prefix{d}": agreement(codes, held, d) for d in (1, 2)},
                     **{f"random_same_prefix{d}": agreement(codes, shuffled, d) for d in (1, 2)}})
    base = next((r for r in rows if r["ids"].startswith("rqvae-")), rows[0])
    for r in rows:
        r["ratio_heldout_prefix1_vs_" + base["ids"]] = r["heldout_same_prefix1"] / max(base["heldout_same_prefix1"], 1e-12)
    out = {"run": str(args.run), "what": "adjacent training pairs sharing ID prefixes (an ID-level check)",
           "command": " ".join(["python", *sys.argv]), **artifacts.provenance(), "rows": rows}
    artifacts.write_json(ROOT / "benchmarks" / "results" / f"ids_collaborative_{args.run.name}.json", out)
    print("| ids | collisions | level-1 codes used | train pairs: same 1st code | same 2 | held-out pairs: same 1st code "
          f"| same 2 | random: same 1st | held-out × {base['ids']} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['ids']} | {r['collision_share']:.1%} | {r['level1_codes_used']} | {r['pairs_same_prefix1']:.3f} | "
              f"{r['pairs_same_prefix2']:.3f} | {r['heldout_same_prefix1']:.3f} | {r['heldout_same_prefix2']:.3f} | "
              f"{r['random_same_prefix1']:.4f} | {r['ratio_heldout_prefix1_vs_' + base['ids']]:.2f} |")


if __name__ == "__main__":
    main()
