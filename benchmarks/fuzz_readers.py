"""Fuzzing every reader with generated broken input (hypothesis): each case must end in a clear
error naming the file (and the line, for a bad line), or, in lenient mode, in skips counted by
reason. Any other exception is a failure, printed with the input that caused it.

    python benchmarks/fuzz_readers.py --examples 10000          # every format → benchmarks/results/fuzz_readers.json

Inputs mix valid lines with malformed JSON / Python-literal lines, wrong-typed and missing fields,
random text, huge lines (200k characters), empty files, truncated gzip and wrong encodings
(Latin-1, UTF-16). ``tests/test_readers_fuzz.py`` runs the same harness with fewer examples.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.readers import get_reader

USER, ITEM = st.integers(0, 30).map(lambda i: f"U{i}"), st.integers(0, 30).map(lambda i: f"I{i}")
TIME = st.integers(1_300_000_000, 1_500_000_000)
# timestamps as text fields: mostly valid, sometimes NaN, infinite, negative or past int64
TIME_TEXT = st.one_of(TIME, TIME, TIME, st.sampled_from(["inf", "-inf", "nan", "1e400", "-5", "1.5e9", "9" * 25, ""]))
JUNK = st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=8), st.none(), st.lists(st.integers(), max_size=3))


def json_line(fields: dict) -> st.SearchStrategy[str]:
    """A JSON object over ``fields`` (name → strategy), some fields dropped or replaced by junk."""
    def build(values: dict, drop: set, junk: dict) -> str:
        obj = {k: (junk[k] if k in junk else v) for k, v in values.items() if k not in drop}
        return json.dumps(obj, default=str)
    keys = sorted(fields)
    return st.builds(build, st.fixed_dictionaries(fields), st.sets(st.sampled_from(keys), max_size=2),
                     st.dictionaries(st.sampled_from(keys), JUNK, max_size=2))


def mutate(good: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid lines, cut or edited ones, random text and the occasional huge line."""
    cut = st.tuples(good, st.integers(0, 40)).map(lambda t: t[0][: max(0, len(t[0]) - t[1])])
    spliced = st.tuples(good, st.text(max_size=5), st.integers(0, 60)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])
    huge = st.just("x" * 200_000)
    return st.one_of(good, good, good, cut, spliced, st.text(max_size=40).map(lambda s: s.replace("\n", " ")), huge)


def lines(good: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(mutate(good), min_size=0, max_size=12)


AMAZON14 = json_line({"reviewerID": USER, "asin": ITEM, "overall": st.floats(1, 5), "unixReviewTime": TIME})
META14 = st.builds(lambda a, t: repr({"asin": a, "title": t, "categories": [["Beauty", "Skin"]]}), ITEM, st.text(max_size=12))
AMAZON18 = AMAZON14
META18 = json_line({"asin": ITEM, "title": st.text(max_size=12), "brand": st.text(max_size=6),
                    "category": st.lists(st.text(max_size=6), max_size=3)})
AMAZON23 = json_line({"user_id": USER, "parent_asin": ITEM, "rating": st.floats(1, 5), "timestamp": TIME.map(lambda t: t * 1000)})
META23 = json_line({"parent_asin": ITEM, "title": st.text(max_size=12), "store": st.text(max_size=6),
                    "categories": st.lists(st.text(max_size=6), max_size=3)})
SEQ = st.builds(lambda u, items: " ".join([u, *items]), st.integers(1, 30).map(str),
                st.lists(st.integers(1, 30).map(str), min_size=0, max_size=6))
GRAM = st.builds(lambda u, items: " ".join([u, *items]), USER, st.lists(ITEM, min_size=0, max_size=6))
INTER = st.builds(lambda u, i, t: f"{u}\t{i}\t{t}", USER, ITEM, TIME_TEXT)
CSV = st.builds(lambda u, i, t: f"{u},{i},{t}", USER, ITEM, TIME_TEXT)

# format → {file name: (line strategy, header line or None)}
LAYOUTS = {
    "amazon2014": {"reviews_Fuzz_5.json": (AMAZON14, None), "meta_Fuzz.json": (META14, None)},
    "amazon2018": {"Fuzz_5.json": (AMAZON18, None), "meta_Fuzz.json": (META18, None)},
    "amazon2023": {"Fuzz.jsonl": (AMAZON23, None), "meta_Fuzz.jsonl": (META23, None)},
    "p5": {"sequential_data.txt": (SEQ, None)},
    "gram": {"user_sequence.txt": (GRAM, None)},
    "unisrec": {"Fuzz.inter": (INTER, "user_id:token\titem_id:token\ttimestamp:float")},
    "csv": {"train.csv": (CSV, "user_id,item_id,time")},
}
P5_MAPS = json.dumps({"id2user": {str(i): f"U{i}" for i in range(31)}, "id2item": {str(i): f"I{i}" for i in range(31)}})
ENCODINGS = st.sampled_from(["plain", "plain", "plain", "gzip", "gzip-cut", "latin-1", "utf-16", "empty"])


def write(path: Path, body: str, encoding: str) -> None:
    data = body.encode("utf-8", errors="surrogatepass")
    if encoding == "empty":
        data = b""
    elif encoding == "latin-1":
        data = body.encode("latin-1", errors="replace") + b"\xe9\xff\n"
    elif encoding == "utf-16":
        data = body.encode("utf-16")
    elif encoding.startswith("gzip"):
        data = gzip.compress(data)
        if encoding == "gzip-cut":
            data = data[: max(10, len(data) // 2)]
    path.write_bytes(data)


def run_case(fmt: str, files: dict[str, tuple[list[str], str]], strict: bool, tally: Counter, bad: list) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        for name, (body_lines, encoding) in files.items():
            header = LAYOUTS[fmt][name][1]
            write(folder / name, "\n".join(([header] if header else []) + body_lines) + "\n", encoding)
        if fmt == "p5":
            (folder / "datamaps.json").write_text(P5_MAPS)
        cfg = PrepareConfig(dataset="fuzz", format=fmt, strict=strict, category="Fuzz")
        try:
            src = get_reader(fmt)(folder, cfg)
        except DataError as exc:
            msg = str(exc)
            line_level = "line " in msg
            names_file = str(folder) in msg
            if not names_file:
                bad.append({"format": fmt, "strict": strict, "error": msg, "why": "the error names no file"})
            tally["clear error (file and line)" if line_level else "clear error (file)"] += 1
            return
        except Exception as exc:  # what the fuzzer looks for
            bad.append({"format": fmt, "strict": strict, "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                        "files": {k: (v[0][:3], v[1]) for k, v in files.items()}})
            tally["other exception"] += 1
            return
        skipped = sum(src.skipped.values())
        tally["read, lines skipped and counted" if skipped else "read cleanly"] += 1
        if strict and skipped:
            bad.append({"format": fmt, "strict": strict, "error": "strict mode skipped lines instead of stopping"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fuzz(fmt: str, examples: int, seed: int = 0) -> tuple[Counter, list[dict]]:
    tally: Counter = Counter()
    bad: list[dict] = []
    names = list(LAYOUTS[fmt])
    case = st.fixed_dictionaries({n: st.tuples(lines(LAYOUTS[fmt][n][0]), ENCODINGS) for n in names})

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case, st.booleans())
    def check(files, strict):
        run_case(fmt, files, strict, tally, bad)

    check()
    return tally, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=10_000, help="generated inputs per format")
    ap.add_argument("--formats", default=",".join(LAYOUTS))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fuzz_readers.json")
    a = ap.parse_args()
    report = {"command": " ".join(["python", *sys.argv]), "examples_per_format": a.examples,
              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "formats": {}}
    failures = 0
    for fmt in a.formats.split(","):
        t0 = time.perf_counter()
        tally, bad = fuzz(fmt, a.examples)
        failures += len(bad)
        report["formats"][fmt] = {"cases": sum(tally.values()), "outcomes": dict(tally), "failures": len(bad),
                                  "failure_examples": bad[:5], "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{fmt}: {sum(tally.values())} cases, {dict(tally)}, {len(bad)} failures", flush=True)
        a.out.parent.mkdir(parents=True, exist_ok=True)  # written after every format: a long run keeps its part
        a.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {a.out}; {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
