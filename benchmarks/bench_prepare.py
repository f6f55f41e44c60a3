"""Throughput and peak memory of reading raw Amazon 2018 reviews: ``semid`` against a plain baseline.

Generates a synthetic ``Bench_5.json.gz`` (2018 layout, realistic fields and line lengths) and a
small ``meta_Bench.json.gz``, then times, each in a fresh subprocess so that peak RSS is per run:

* ``reader``: ``semid.data.readers.amazon.read_amazon2018``;
* ``prepare``: the whole ``semid.data.prepare.run`` stage (when it exists and runs);
* ``baseline``: ``json.loads`` per line into a list of dicts, then ``pandas.DataFrame``; the
  metadata likewise (whole records, then the reviewed ASINs). For reviews it keeps only the four
  fields the reader keeps: whole records would need far more memory than a 2-core worker can
  spare at 5M reviews. It does no HTML cleaning, which the reader does.

Each child reports wall and CPU seconds (the CPU figure is steadier on a shared machine), the
part spent on metadata, ``ru_maxrss`` and the peak of anonymous (heap) memory; the two differ
for the reader because polars memory-maps the ``.gz`` and those pages count in ``ru_maxrss``.

Usage: ``python benchmarks/bench_prepare.py [--sizes 1000000,5000000] [--workdir DIR]``.
Figures go to ``benchmarks/results/prepare.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "prepare.json"
CATEGORY = "Bench"
WORDS = ("great product works well love it quality price fast shipping would buy again not "
         "worth the money broke after two weeks smells nice skin feels soft color exactly as "
         "pictured recommend size small large daughter gift happy disappointed perfect").split()


def generate(folder: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` reviews in the 2018 layout; vectorised (polars) so 5M lines take well under a minute."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 12, 50), max(n // 40, 20)
    users = np.array([f"A{i:012X}" for i in range(n_users)])
    items = np.array([f"B0{i:08d}" for i in range(n_items)])
    # A pool of texts and names sampled per row: the parser's cost depends on bytes, not variety.
    pool = [" ".join(rng.choice(WORDS, size=rng.integers(10, 50))).capitalize() + ". \"Quoted\" café."
            for _ in range(5000)]
    names = [f"Reviewer {i}" for i in range(5000)]
    path = folder / f"{CATEGORY}_5.json.gz"
    chunk = 500_000
    with gzip.open(path, "wb", compresslevel=1) as out:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ts = rng.integers(946_684_800, 1_538_352_000, size=m)
            df = pl.DataFrame({
                "overall": rng.integers(1, 6, size=m).astype(np.float64),
                "verified": rng.random(m) < 0.8,
                "reviewTime": pl.Series(ts * 1_000_000, dtype=pl.Datetime("us")).dt.strftime("%m %-d, %Y"),
                "reviewerID": users[rng.integers(0, n_users, size=m)],
                "asin": items[rng.integers(0, n_items, size=m)],
                "style": pl.DataFrame({"Size:": rng.choice([" 7.0 oz", " Large", " 2 Pack"], size=m)}).to_struct(),
                "reviewerName": pl.Series(names).gather(rng.integers(0, len(names), size=m)),
                "reviewText": pl.Series(pool).gather(rng.integers(0, len(pool), size=m)),
                "summary": pl.Series(pool).gather(rng.integers(0, len(pool), size=m)).str.slice(0, 40),
                "unixReviewTime": ts,
            })
            buf = df.write_ndjson()
            out.write(buf.encode() if isinstance(buf, str) else buf)
    meta = folder / f"meta_{CATEGORY}.json.gz"
    with gzip.open(meta, "wt", compresslevel=1) as out:
        for i, asin in enumerate(items):
            rec = {"category": ["Bench", f"Sub {i % 17}"], "description": [pool[i % len(pool)]],
                   "title": f"Product {i} &amp; more", "brand": f"Brand {i % 300}",
                   "price": f"${(i % 5000) / 100 + 1:.2f}", "asin": str(asin)}
            out.write(json.dumps(rec) + "\n")
    return path


# What each child runs: (imports, untimed; work, timed, which sets ``rows``).
CHILD = {
    "reader": ("""
from semid.data.config import PrepareConfig
from semid.data.readers import amazon
from semid.data.readers.amazon import read_amazon2018
_read_meta = amazon.read_meta
def timed_meta(*args):  # to report the metadata share of the time
    global meta
    t, c = time.perf_counter(), time.process_time()
    out = _read_meta(*args)
    meta = (time.perf_counter() - t, time.process_time() - c)
    return out
amazon.read_meta = timed_meta
""", """
src = read_amazon2018(FOLDER, PrepareConfig(dataset="bench", format="amazon2018"))
rows = src.interactions.height
"""),
    "prepare": ("""
from semid.data.config import PrepareConfig
from semid.data.prepare import run
""", """
run(PrepareConfig(dataset="bench", format="amazon2018"), FOLDER.parent / (FOLDER.name + "-run"), path=FOLDER, force=True)
rows = N
"""),
    # The usual snippet: json.loads per line into dicts, then a DataFrame; metadata likewise.
    "baseline": ("""
import gzip, json, pandas as pd
""", """
events = []
with gzip.open(FOLDER / "Bench_5.json.gz", "rt", encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        events.append({"user": d["reviewerID"], "item": d["asin"], "timestamp": d["unixReviewTime"], "rating": d["overall"]})
df = pd.DataFrame(events)
t, c = time.perf_counter(), time.process_time()
with gzip.open(FOLDER / "meta_Bench.json.gz", "rt", encoding="utf-8") as f:
    meta = pd.DataFrame([json.loads(line) for line in f])
meta = meta[meta["asin"].isin(set(df["item"]))]
meta = (time.perf_counter() - t, time.process_time() - c)
rows = len(df)
"""),
}

HARNESS = """
import json, re, resource, sys, threading, time
from pathlib import Path
FOLDER = Path({folder!r}); N = {n}
peak_anon = 0
meta = (0.0, 0.0)  # (wall, cpu) seconds spent on the metadata file
def watch():  # heap only: the fast path memory-maps the .gz, and those pages count in ru_maxrss
    global peak_anon
    while True:
        try:
            m = re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read())
        except OSError:  # not Linux
            return
        peak_anon = max(peak_anon, int(m[1]) if m else 0)
        time.sleep(0.02)
{setup}
threading.Thread(target=watch, daemon=True).start()
t0, c0 = time.perf_counter(), time.process_time()
{body}
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({{"seconds": wall, "cpu_seconds": cpu, "rows": rows,
                  "meta_seconds": meta[0], "meta_cpu_seconds": meta[1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_anon_rss_mb": peak_anon / 1024}}))
"""


def measure(kind: str, folder: Path, n: int) -> dict:
    setup, body = CHILD[kind]
    code = HARNESS.format(folder=str(folder), n=n, setup=setup, body=body)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["reviews_per_s"] = n / out["seconds"]
    out["load_before"] = load  # the machine is shared: a high load inflates the wall times
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000", help="comma-separated review counts")
    ap.add_argument("--workdir", type=Path, help="where to write the generated files (default: a temp dir)")
    ap.add_argument("--skip-baseline", action="store_true", help="time only semid")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="semid-bench-"))
    runs = []
    for n in sizes:
        folder = base / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / f"{CATEGORY}_5.json.gz").exists():
            t = time.perf_counter()
            generate(folder, n)
            print(f"generated {n:,} reviews in {time.perf_counter() - t:.1f}s", flush=True)
        size_mb = (folder / f"{CATEGORY}_5.json.gz").stat().st_size / 2**20
        row = {"reviews": n, "gz_mb": round(size_mb, 1)}
        for kind in ("reader", "prepare", "baseline"):
            if kind == "baseline" and args.skip_baseline:
                continue
            row[kind] = measure(kind, folder, n)
            print(n, kind, row[kind], flush=True)
        if "seconds" in row["reader"] and "seconds" in row.get("baseline", {}):
            r, b = row["reader"], row["baseline"]
            row["reader_vs_baseline"] = {
                "speedup_wall": round(b["seconds"] / r["seconds"], 2),
                "speedup_cpu": round(b["cpu_seconds"] / r["cpu_seconds"], 2),
                "speedup_reviews_only_wall": round((b["seconds"] - b["meta_seconds"]) / (r["seconds"] - r["meta_seconds"]), 2),
                "speedup_reviews_only_cpu": round((b["cpu_seconds"] - b["meta_cpu_seconds"])
                                                  / (r["cpu_seconds"] - r["meta_cpu_seconds"]), 2),
                "peak_rss_ratio": round(r["peak_rss_mb"] / b["peak_rss_mb"], 3),
                "peak_anon_rss_ratio": round(r["peak_anon_rss_mb"] / b["peak_anon_rss_mb"], 3)}
            print(n, "reader vs baseline", row["reader_vs_baseline"], flush=True)
        runs.append(row)
    import pandas
    import pyarrow
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sizes": sizes,
        "hardware": {"cpu_count": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor(),
                     "system": platform.platform(), "loadavg_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "polars": pl.__version__,
                     "pyarrow": pyarrow.__version__, "pandas": pandas.__version__},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
