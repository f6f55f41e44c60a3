"""Golden record: the numbers a refactoring must leave unchanged.

    python benchmarks/golden.py toy --out runs/golden-toy --record benchmarks/results/golden_toy.json
    python benchmarks/golden.py toy --out runs/golden-toy --check benchmarks/results/golden_toy.json
    python benchmarks/golden.py beauty --out runs/golden-beauty --data-dir ../shared/data --record F
    python benchmarks/golden.py evaluate --out runs/golden-beauty --check F   # re-score saved models only

``toy`` runs ``semid run --dataset toy`` (tiny TIGER) and ``semid compare`` over every model of
the comparison with short, fixed budgets on one thread, then records a digest of the Semantic
IDs (RQ-VAE and random) and every model's test metrics. ``beauty`` does the same on Beauty with
two epochs per model (a fixture of trained folders, not a result). ``evaluate`` re-scores the
model folders already in ``--out`` with ``--force`` through the current code: with ``--check``
the metrics must equal the record, which is how folders written by an older layout are shown to
read the same. Every command goes through the ``semid`` command line only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

MODELS = ["pop", "knn", "sasrec-ce", "sasrec-bce", "gru4rec", "bert4rec", "tiger", "tiger-random", "sid-gru",
          "sid-bert4rec"]
EPOCHS = {"toy": 2, "beauty": 2}


def semid(*args: str) -> None:
    cmd = [sys.executable, "-c", "from semid.cli import main; main()", *args]
    print("$ semid " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, env=os.environ | {"SEMID_PROGRESS": "0"})


def settings(dataset: str) -> str:
    """Every neural row trained for a fixed number of epochs, no clock, no early stop."""
    n = EPOCHS[dataset]
    per = {m: {"max_epochs": n, "max_time_min": None, "patience": 100, "val_users": 200}
           for m in MODELS if m not in ("pop", "knn")}
    return "compare.settings=" + json.dumps(per)


def train(dataset: str, out: Path, data_dir: str | None) -> None:
    common = ["--out", str(out)] + (["--data-dir", data_dir] if data_dir else [])
    preset = "tiny" if dataset == "toy" else "cpu"
    tiger = ["ids.codebook_size=256", "ids.steps=2000", f"tiger.preset={preset}", "tiger.threads=1", f"tiger.max_epochs={EPOCHS[dataset]}",
             "tiger.max_time_min=null", "tiger.patience=100", "tiger.val_users=200"]
    semid("run", "--dataset", dataset, *common, *tiger, "evaluate.bootstrap=100", "evaluate.threads=1")
    semid("compare", "--dataset", dataset, *common, *tiger, "compare.threads=1", "compare.bootstrap=100",
          "compare.models=[" + ",".join(MODELS) + "]", settings(dataset))


def ids_digest(folder: Path) -> str:
    df = pl.read_parquet(folder / "semantic_ids.parquet").sort("item_id")
    return hashlib.blake2b(df.to_numpy().astype("int64").tobytes(), digest_size=16).hexdigest()


def collect(out: Path) -> dict:
    ids = {p.name: ids_digest(p) for p in sorted((out / "ids").glob("*")) if (p / "semantic_ids.parquet").is_file()}
    metrics = {}
    for f in sorted((out / "models").glob("*/metrics.json")):
        m = json.loads(f.read_text())
        metrics[f.parent.name] = m["metrics"]
    return {"semantic_ids": ids, "metrics": metrics}


def reevaluate(out: Path) -> None:
    for folder in sorted((out / "models").glob("*/config.json")):
        semid("evaluate", "--out", str(out), f"model={folder.parent.name}", "bootstrap=100", "threads=1", "--force")


def compare(got: dict, want: dict) -> list[str]:
    diffs = []
    for section in ("semantic_ids", "metrics"):
        for name in sorted(set(got[section]) | set(want[section])):
            a, b = got[section].get(name), want[section].get(name)
            if a != b:
                diffs.append(f"{section}/{name}: got {a}, recorded {b}")
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["toy", "beauty", "evaluate"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--record", type=Path, help="write the golden record here")
    ap.add_argument("--check", type=Path, help="compare with this golden record; exit 1 on any difference")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.what == "evaluate":
        reevaluate(a.out)
    else:
        train(a.what, a.out, a.data_dir)
    got = collect(a.out)
    if a.record:
        a.record.parent.mkdir(parents=True, exist_ok=True)
        a.record.write_text(json.dumps(got | {"command": " ".join(sys.argv), "wall_s": round(time.perf_counter() - t0)},
                                       indent=2) + "\n")
        print(f"recorded {a.record}")
    if a.check:
        diffs = compare(got, json.loads(a.check.read_text()))
        print("\n".join(diffs) if diffs else f"identical to {a.check}: {len(got['metrics'])} models, "
                                              f"{len(got['semantic_ids'])} ID tables")
        sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
