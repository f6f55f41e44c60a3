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

The item embeddings differ in their last bits from one CPU to another (the encoder's float path:
AVX2 or AVX-512 kernels), and the Semantic IDs, and every model trained on them, follow those
bits. So a record file holds one record per float path, each with the digest of the embeddings it
was made from (``--record-add`` adds this machine's). ``--check`` compares everything with the
record made from the same embeddings; when no record was (a CPU not recorded yet), it still
checks the rows that do not depend on the embeddings (pop and the item-ID models) against every
record, says which rows it could not check and why, and exits 0 with ``not comparable`` in its
output (the test then skips, naming the reason). A record of the first layout (no embeddings
digest) is matched in full or not at all.
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
    tiger = ["ids.method=rqvae", "ids.codebook_size=256", "ids.steps=2000", f"tiger.preset={preset}", "tiger.threads=1",
             f"tiger.max_epochs={EPOCHS[dataset]}",
             "tiger.max_time_min=null", "tiger.patience=100", "tiger.val_users=200"]
    semid("run", "--dataset", dataset, *common, *tiger, "evaluate.bootstrap=100", "evaluate.threads=1")
    semid("compare", "--dataset", dataset, *common, *tiger, "compare.threads=1", "compare.bootstrap=100",
          "compare.models=[" + ",".join(MODELS) + "]", settings(dataset))


def ids_digest(folder: Path) -> str:
    df = pl.read_parquet(folder / "semantic_ids.parquet").sort("item_id")
    return hashlib.blake2b(df.to_numpy().astype("int64").tobytes(), digest_size=16).hexdigest()


FLOAT_FREE = ("pop", "sasrec-ce", "sasrec-bce", "gru4rec", "bert4rec")  # rows that never read the embeddings


def collect(out: Path) -> dict:
    ids = {p.name: ids_digest(p) for p in sorted((out / "ids").glob("*")) if (p / "semantic_ids.parquet").is_file()}
    metrics = {}
    for f in sorted((out / "models").glob("*/metrics.json")):
        m = json.loads(f.read_text())
        metrics[f.parent.name] = m["metrics"]
    emb = (out / "embed" / "item_embeddings.npy").read_bytes()
    return {"embeddings": hashlib.blake2b(emb, digest_size=16).hexdigest(), "semantic_ids": ids, "metrics": metrics}


def records(doc: dict) -> list[dict]:
    """The records of a file: ``{"records": [...]}``, or one record of the first layout."""
    return doc["records"] if "records" in doc else [doc | {"embeddings": None}]


def check(got: dict, recs: list[dict]) -> tuple[list[str], str]:
    """(differences, verdict) of ``got`` against the records: "identical" or "not comparable"
    (no record from these embeddings; only the rows that do not read them were checked)."""
    same = [r for r in recs if r.get("embeddings") == got["embeddings"]]
    if same:
        return compare(got, same[0]), "identical"
    legacy = [r for r in recs if r.get("embeddings") is None]
    if any(not compare(got, r) for r in legacy):
        return [], "identical"
    return [d for r in recs for d in compare(_float_free(got), _float_free(r))], "not comparable"


def _float_free(rec: dict) -> dict:
    """A record's rows that never read the embeddings, without its Semantic IDs."""
    return {"semantic_ids": {}, "metrics": {k: v for k, v in rec["metrics"].items() if k in FLOAT_FREE}}


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
    ap.add_argument("--record", type=Path, help="write the golden record here (replacing the file)")
    ap.add_argument("--record-add", type=Path, help="add this machine's record to the file (its embeddings' float path)")
    ap.add_argument("--check", type=Path, help="compare with this golden record; exit 1 on any difference")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.what == "evaluate":
        reevaluate(a.out)
    else:
        train(a.what, a.out, a.data_dir)
    got = collect(a.out)
    stamp = {"command": " ".join(sys.argv), "wall_s": round(time.perf_counter() - t0), "cpu": cpu()}
    if a.record or a.record_add:
        path = a.record or a.record_add
        old = records(json.loads(path.read_text())) if a.record_add and path.is_file() else []
        kept = [r for r in old if r.get("embeddings") != got["embeddings"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"records": kept + [got | stamp]}, indent=2) + "\n")
        print(f"recorded {path} ({len(kept) + 1} record(s))")
    if a.check:
        diffs, verdict = check(got, records(json.loads(a.check.read_text())))
        if diffs:
            print("\n".join(diffs))
        elif verdict == "identical":
            print(f"identical to {a.check}: {len(got['metrics'])} models, {len(got['semantic_ids'])} ID tables")
        else:
            unchecked = sorted(set(got["metrics"]) - set(FLOAT_FREE))
            print(f"not comparable: the item embeddings here (digest {got['embeddings']}, CPU {cpu()}) match no record of "
                  f"{a.check}, so the Semantic IDs and {', '.join(unchecked)} were not checked; {len(FLOAT_FREE)} rows that "
                  "do not read the embeddings are identical. Add this CPU's record from a known-good commit with --record-add.")
        sys.exit(1 if diffs else 0)


def cpu() -> str:
    """The CPU model and its widest vector extension (what decides the encoder's float path)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wide = "avx512" if any(f.startswith("avx512") for f in flags) else "avx2" if "avx2" in flags else "other"
    return f"{name} ({wide})"


if __name__ == "__main__":
    main()
