"""Wall time of the whole Semantic ID stage on a prepared run (embed + train + assign + analyze).

Runs the real CLI commands one after another, each in its own process (so start-up and model
loading count), and records each step's wall time and the headline quality figures.

Usage: ``python benchmarks/bench_ids_stage.py [--out runs/beauty] [--methods rqvae,rqkmeans,random]``
(the run folder must hold ``data/`` from ``semid prepare``). Embeddings are recomputed without the
cache (``--force cache=false``) and every ID model is retrained (``--force``).
Figures go to ``benchmarks/results/ids_stage_<run name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> float:
    cmd = [str(Path(sys.executable).parent / "semid"), *args]
    print("$", shlex.join(["semid", *args]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=os.environ | {"SEMID_PROGRESS": "0"}, stdout=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    print(f"  {dt:.1f} s", flush=True)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/beauty")
    ap.add_argument("--methods", default="rqvae,rqkmeans,random")
    args = ap.parse_args()
    run = Path(args.out)
    steps: list[dict] = []

    def step(name: str, cli: list[str]) -> None:
        steps.append({"step": name, "command": shlex.join(["semid", *cli]), "seconds": round(timed(cli), 1)})

    step("embed", ["embed", "--out", str(run), "--force", "cache=false"])
    for method in args.methods.split(","):
        over = [f"method={method}"]
        step(f"train {method}", ["ids", "train", "--out", str(run), "--force", *over])
        step(f"assign {method}", ["ids", "assign", "--out", str(run), *over])
        step(f"analyze {method}", ["ids", "analyze", "--out", str(run), "--force", *over])
    quality = {}
    for folder in sorted((run / "ids").glob("*-*x*")):
        rep_file = folder / "ids_report.json"
        if not rep_file.is_file() or folder.name.split("-")[0] not in args.methods.split(","):
            continue
        rep = json.loads(rep_file.read_text())
        rec = rep.get("reconstruction") or {}
        quality[folder.name] = {
            "used_share": [u["used_share"] for u in rep["usage"]],
            "perplexity": [round(u["perplexity"], 1) for u in rep["usage"]],
            "recon_cosine": rec.get("mean_cosine"), "recon_mse": rec.get("mse"),
            "collision_share": rep["collisions"]["collision_share"],
            "largest_group": rep["collisions"]["largest_group"],
            "unique_after_dedup": rep["collisions"]["unique_after_dedup"],
            "coherence": [r["mean_cosine"] for r in rep["coherence"]["prefix"]],
            "random_pairs": rep["coherence"]["random_pairs"],
        }
    first = ["embed", "train rqvae", "assign rqvae", "analyze rqvae"]
    result = {
        "run": str(run), "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(),
                                      "note": "2-core CPU shared with other jobs; no GPU"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "steps": steps,
        "stage_seconds_rqvae": round(sum(s["seconds"] for s in steps if s["step"] in first), 1),
        "total_seconds": round(sum(s["seconds"] for s in steps), 1),
        "quality": quality,
    }
    out = ROOT / "benchmarks" / "results" / f"ids_stage_{run.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("steps", "stage_seconds_rqvae", "total_seconds")}, indent=2))


if __name__ == "__main__":
    main()
