"""Throughput and peak memory of preparing raw Amazon reviews (2018 and 2023 layouts): ``semid``
against a plain baseline.

Generates a synthetic reviews file (``Bench_5.json.gz`` in the 2018 layout, ``Bench.jsonl.gz`` in
the 2023 one; realistic fields and line lengths) and its metadata file, then times, each in a
fresh subprocess so that peak memory is per run:

* ``reader``: the streaming reader (``semid.data.readers.amazon.stream_amazon2018`` / ``2023``):
  reviews to Parquet on disk, plus the metadata of the reviewed items, HTML cleaned;
* ``prepare``: the whole ``semid.data.prepare.run`` stage with ``engine=streaming`` (reader,
  deduplication, 5-core, item text, splits, Parquet and CSV);
* ``prepare_memory``: the same stage with ``engine=memory`` (the whole table in memory; the
  path used before streaming, and still used for small inputs);
* ``baseline``: ``json.loads`` per line into a list of dicts, then ``pandas.DataFrame``; the
  metadata likewise (whole records, then the reviewed ASINs). For reviews it keeps only the four
  fields the reader keeps: whole records would need far more memory than a 2-core worker can
  spare at 5M reviews. It does no HTML cleaning, which the reader does.

Each child reports wall and CPU seconds (the CPU figure is steadier on a shared machine), the
part spent on metadata, the peak RSS (``VmHWM``) and the peak of anonymous (heap) memory; the
two differ for polars' readers because polars memory-maps the ``.gz`` and those pages (page
cache, given back under memory pressure) count in the RSS.

Usage: ``python benchmarks/bench_prepare.py --format amazon2018 --sizes 5000000,20000000
[--kinds reader,prepare,baseline] [--workdir DIR]``. Figures go to
``benchmarks/results/prepare.json`` and its table ``prepare.md`` (``--table`` rewrites the table
from the JSON alone); a run replaces the rows of its (format, size, kind) and keeps the others,
so sizes can be measured one at a time.
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


# Per release: (reviews file, metadata file, reader) names; the fields follow the published dumps.
LAYOUTS = {
    "amazon2018": (f"{CATEGORY}_5.json.gz", f"meta_{CATEGORY}.json.gz", "read_amazon2018"),
    "amazon2023": (f"{CATEGORY}.jsonl.gz", f"meta_{CATEGORY}.jsonl.gz", "read_amazon2023"),
}


def generate(folder: Path, n: int, fmt: str = "amazon2018", seed: int = 0) -> Path:
    """Write ``n`` reviews in the ``fmt`` layout; vectorised (polars) so 5M lines take well under a minute."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 12, 50), max(n // 40, 20)
    # 2023 user IDs are 28 upper-case characters, 2018 reviewer IDs 13 to 14
    users = np.array([f"AG{i:026X}" if fmt == "amazon2023" else f"A{i:012X}" for i in range(n_users)])
    items = np.array([f"B0{i:08d}" for i in range(n_items)])
    # A pool of texts and names sampled per row: the parser's cost depends on bytes, not variety.
    pool = [" ".join(rng.choice(WORDS, size=rng.integers(10, 50))).capitalize() + ". \"Quoted\" café."
            for _ in range(5000)]
    names = [f"Reviewer {i}" for i in range(5000)]
    reviews_name, meta_name, _ = LAYOUTS[fmt]
    path = folder / reviews_name
    chunk = 500_000
    with gzip.open(path, "wb", compresslevel=1) as out:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ts = rng.integers(946_684_800, 1_538_352_000, size=m)
            text = pl.Series(pool).gather(rng.integers(0, len(pool), size=m))
            title = pl.Series(pool).gather(rng.integers(0, len(pool), size=m)).str.slice(0, 40)
            item = items[rng.integers(0, n_items, size=m)]
            rating = rng.integers(1, 6, size=m).astype(np.float64)
            if fmt == "amazon2023":
                df = pl.DataFrame({
                    "rating": rating, "title": title, "text": text,
                    "images": pl.Series([[]] * m, dtype=pl.List(pl.String)),
                    "asin": item, "parent_asin": item,
                    "user_id": users[rng.integers(0, n_users, size=m)],
                    "timestamp": ts * 1000 + rng.integers(0, 1000, size=m),
                    "helpful_vote": rng.integers(0, 4, size=m),
                    "verified_purchase": rng.random(m) < 0.8,
                })
            else:
                df = pl.DataFrame({
                    "overall": rating,
                    "verified": rng.random(m) < 0.8,
                    "reviewTime": pl.Series(ts * 1_000_000, dtype=pl.Datetime("us")).dt.strftime("%m %-d, %Y"),
                    "reviewerID": users[rng.integers(0, n_users, size=m)],
                    "asin": item,
                    "style": pl.DataFrame({"Size:": rng.choice([" 7.0 oz", " Large", " 2 Pack"], size=m)}).to_struct(),
                    "reviewerName": pl.Series(names).gather(rng.integers(0, len(names), size=m)),
                    "reviewText": text,
                    "summary": title,
                    "unixReviewTime": ts,
                })
            buf = df.write_ndjson()
            out.write(buf.encode() if isinstance(buf, str) else buf)
    with gzip.open(folder / meta_name, "wt", compresslevel=1) as out:
        for i, asin in enumerate(items):
            if fmt == "amazon2023":
                rec = {"main_category": "Bench", "title": f"Product {i} &amp; more", "average_rating": 4.2,
                       "rating_number": i % 90, "features": [f"Feature {i % 11}"],
                       "description": [pool[i % len(pool)]], "price": (i % 5000) / 100 + 1, "images": [],
                       "videos": [], "store": f"Brand {i % 300}", "categories": ["Bench", f"Sub {i % 17}"],
                       "details": {"Item Weight": "7 ounces"}, "parent_asin": str(asin), "bought_together": None}
            else:
                rec = {"category": ["Bench", f"Sub {i % 17}"], "description": [pool[i % len(pool)]],
                       "title": f"Product {i} &amp; more", "brand": f"Brand {i % 300}",
                       "price": f"${(i % 5000) / 100 + 1:.2f}", "asin": str(asin)}
            out.write(json.dumps(rec) + "\n")
    return path


# What each child runs: (imports, untimed; work, timed, which sets ``rows``).
_META_TIMER = """
from semid.data.readers import amazon
def timed(read):  # to report the metadata share of the time
    def run(*args):
        global meta
        t, c = time.perf_counter(), time.process_time()
        out = read(*args)
        meta = (time.perf_counter() - t, time.process_time() - c)
        return out
    return run
amazon.read_meta, amazon.stream_meta = timed(amazon.read_meta), timed(amazon.stream_meta)
"""
CHILD = {
    "reader": (_META_TIMER + """
import polars as pl, shutil
from semid.data.config import PrepareConfig
""", """
work = FOLDER.parent / (FOLDER.name + "-reader")
shutil.rmtree(work, ignore_errors=True)
src = getattr(amazon, "stream_" + FMT)(FOLDER, PrepareConfig(dataset="bench", format=FMT), work)
rows = pl.scan_parquet(src.events).select(pl.len()).collect().item()
shutil.rmtree(work)
"""),
    "prepare": (_META_TIMER + """
from semid.data.config import PrepareConfig
from semid.data.prepare import run
""", """
run(PrepareConfig(dataset="bench", format=FMT, engine="streaming"), FOLDER.parent / (FOLDER.name + "-run"), path=FOLDER, force=True)
rows = N
"""),
    "prepare_memory": (_META_TIMER + """
from semid.data.config import PrepareConfig
from semid.data.prepare import run
""", """
run(PrepareConfig(dataset="bench", format=FMT, engine="memory"), FOLDER.parent / (FOLDER.name + "-run"), path=FOLDER, force=True)
rows = N
"""),
    # The usual snippet: json.loads per line into dicts, then a DataFrame; metadata likewise.
    "baseline": ("""
import gzip, json, pandas as pd
""", """
USER, ITEM, TIME, RATING = FIELDS
events = []
with gzip.open(FOLDER / REVIEWS, "rt", encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        events.append({"user": d[USER], "item": d[ITEM], "timestamp": d[TIME], "rating": d[RATING]})
df = pd.DataFrame(events)
t, c = time.perf_counter(), time.process_time()
with gzip.open(FOLDER / META, "rt", encoding="utf-8") as f:
    meta = pd.DataFrame([json.loads(line) for line in f])
meta = meta[meta[ITEM].isin(set(df["item"]))]
meta = (time.perf_counter() - t, time.process_time() - c)
rows = len(df)
"""),
}
FIELDS = {"amazon2018": ("reviewerID", "asin", "unixReviewTime", "overall"),
          "amazon2023": ("user_id", "parent_asin", "timestamp", "rating")}

HARNESS = """
import json, re, resource, sys, threading, time
from pathlib import Path
FOLDER = Path({folder!r}); N = {n}; FMT = {fmt!r}
REVIEWS, META, FIELDS = {reviews!r}, {meta_name!r}, {fields!r}
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
def hwm():  # VmHWM starts afresh at exec; ru_maxrss would carry the parent's peak over the fork
    try:
        return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{setup}
threading.Thread(target=watch, daemon=True).start()
t0, c0 = time.perf_counter(), time.process_time()
{body}
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({{"seconds": wall, "cpu_seconds": cpu, "rows": rows,
                  "meta_seconds": meta[0], "meta_cpu_seconds": meta[1],
                  "peak_rss_mb": hwm() / 1024,
                  "peak_anon_rss_mb": peak_anon / 1024}}))
"""


def measure(kind: str, folder: Path, n: int, fmt: str) -> dict:
    setup, body = CHILD[kind]
    reviews, meta_name, _ = LAYOUTS[fmt]
    code = HARNESS.format(folder=str(folder), n=n, fmt=fmt, reviews=reviews, meta_name=meta_name,
                          fields=FIELDS[fmt], setup=setup, body=body)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load = os.getloadavg()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["reviews_per_s"] = n / out["seconds"]
    # the machine is shared: a high load inflates the wall times
    out["loadavg_before"] = [round(x, 2) for x in load]
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def compare(r: dict, b: dict) -> dict:
    """Speed and memory of a semid measurement against the baseline's."""
    return {"speedup_wall": round(b["seconds"] / r["seconds"], 2),
            "speedup_cpu": round(b["cpu_seconds"] / r["cpu_seconds"], 2),
            "peak_rss_ratio": round(r["peak_rss_mb"] / b["peak_rss_mb"], 3),
            "peak_anon_rss_ratio": round(r["peak_anon_rss_mb"] / b["peak_anon_rss_mb"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", default="amazon2018", choices=sorted(LAYOUTS), help="layout of the generated files")
    ap.add_argument("--sizes", default="1000000,5000000", help="comma-separated review counts")
    ap.add_argument("--kinds", default="reader,prepare,baseline",
                    help=f"comma-separated measurements, of {', '.join(CHILD)}")
    ap.add_argument("--workdir", type=Path, help="where to write the generated files (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--table", action="store_true", help="only rewrite the Markdown table from --out's JSON")
    args = ap.parse_args()
    if args.table:
        write_table(args.out, json.loads(args.out.read_text())["runs"])
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    unknown = set(kinds) - set(CHILD)
    if unknown:
        ap.error(f"unknown kinds {sorted(unknown)}; known: {', '.join(CHILD)}")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="semid-bench-"))
    reviews_name = LAYOUTS[args.format][0]
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = {(r.get("format", "amazon2018"), r["reviews"]): r for r in old.get("runs", [])}
    for n in sizes:
        folder = base / args.format / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / reviews_name).exists():
            t = time.perf_counter()
            generate(folder, n, args.format)
            print(f"generated {n:,} reviews in {time.perf_counter() - t:.1f}s", flush=True)
        size_mb = (folder / reviews_name).stat().st_size / 2**20
        row = runs.get((args.format, n), {})
        row.update({"format": args.format, "reviews": n, "gz_mb": round(size_mb, 1),
                    "command": " ".join([Path(sys.executable).name, *sys.argv])})
        row.pop("reader_vs_baseline", None)
        for kind in kinds:  # each measurement keeps its own command and date: a row mixes runs
            row[kind] = measure(kind, folder, n, args.format) | {"command": row["command"], "date": time.strftime("%Y-%m-%d %H:%M")}
            print(args.format, n, kind, row[kind], flush=True)
        for kind in ("reader", "prepare", "prepare_memory"):
            if "seconds" in row.get(kind, {}) and "seconds" in row.get("baseline", {}):
                row[f"{kind}_vs_baseline"] = compare(row[kind], row["baseline"])
                print(args.format, n, kind, "vs baseline", row[f"{kind}_vs_baseline"], flush=True)
        runs[(args.format, n)] = row
        write_results(args.out, runs)


def write_results(out: Path, runs: dict) -> None:
    import pandas
    import pyarrow
    result = {
        "command": "python benchmarks/bench_prepare.py --format FMT --sizes N[,N...] --kinds K[,K...] "
                   "(one size at a time; each row records its own command)",
        "hardware": {"cpu_count": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor(),
                     "system": platform.platform(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": {"python": platform.python_version(), "polars": pl.__version__,
                     "pyarrow": pyarrow.__version__, "pandas": pandas.__version__},
        "runs": [runs[k] for k in sorted(runs)],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    write_table(out, result["runs"])
    print(f"wrote {out}", flush=True)


KIND_LABELS = {"reader": "reader (streaming)", "prepare": "prepare stage, streaming",
               "prepare_memory": "prepare stage, in memory", "baseline": "baseline: json.loads + pandas"}


def write_table(out: Path, runs: list[dict]) -> None:
    """``<out>.md``: one row per (release, size, kind) measured, and each kind's ratio to the baseline
    measured on the same file."""
    head = ["release", "reviews", "gz MB", "", "wall s", "reviews/s", "CPU s", "peak heap MB", "peak RSS MB",
            "load (1 min) before", "vs baseline: wall, CPU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in runs:
        for kind, label in KIND_LABELS.items():
            m = r.get(kind)
            if not m or "seconds" not in m:
                continue
            ratio = r.get(f"{kind}_vs_baseline")
            cells = [r.get("format", "amazon2018")[-4:], f"{r['reviews'] // 1_000_000}M", f"{r['gz_mb']:,.0f}", label,
                     f"{m['seconds']:.1f}", f"{m['reviews_per_s'] / 1000:.0f}k", f"{m['cpu_seconds']:.1f}",
                     f"{m['peak_anon_rss_mb']:,.0f}", f"{m['peak_rss_mb']:,.0f}", f"{m['loadavg_before'][0]}",
                     f"{ratio['speedup_wall']}×, {ratio['speedup_cpu']}×" if ratio else ""]
            lines.append("| " + " | ".join(cells) + " |")
    text = (f"# Preparing generated Amazon reviews (`benchmarks/bench_prepare.py`)\n\nFrom `{out.name}`; each row's "
            "command, load and versions are there.\n\n" + "\n".join(lines) + "\n")
    out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
