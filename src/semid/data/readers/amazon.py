"""Readers for the raw Amazon review dumps: 2014 (McAuley), 2018 (Ni et al.) and 2023 (Hou et al.).

Reviews files run to tens of GB, so they are streamed and only user, item, time and rating are
kept. First try: one polars scan of the whole file (vectorised NDJSON parsing, and a gzip inflate
about twice as fast as Python's zlib). If that fails or yields a missing ID, the file is read
again in line-aligned blocks from :func:`~semid.data.lines.iter_blocks`, each parsed by polars;
only a block that fails is re-read line by line with ``json.loads``, so that the error names the
exact line (strict) or the bad lines are skipped and counted while the rest of the block is kept
(lenient). Either way memory stays at a few blocks plus the four output columns.

The metadata files, of which only the reviewed items' lines are parsed, and each release's item
fields: :mod:`semid.data.readers.amazon_meta`. IDs written as JSON numbers are read as their text.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from semid.core.errors import DataError
from semid.core.log import log
from semid.data.config import PrepareConfig
from semid.data.lines import Issues, iter_blocks
from semid.data.readers.amazon_meta import fields_2014, fields_2018, fields_2023, read_meta, stream_meta
from semid.data.source import ITEM_SCHEMA, SCRATCH, Source, StreamSource, batches

# 8 MiB blocks: parsing speed is flat above ~2 MiB, and smaller blocks keep the peak low.
BLOCK_BYTES = 8 << 20
WHOLE_FILE_FIRST = True  # try the one-scan fast path before the block path (tests turn it off)


@dataclass(frozen=True)
class Layout:
    """File names and field names of one release."""

    name: str
    reviews: tuple[str, ...]  # review file names, preferred first; "{cat}" is the category
    meta: tuple[str, ...]
    user: str
    item: str
    time: str
    rating: str
    time_divisor: int  # to unix seconds
    meta_key: str
    meta_fields: Callable[[dict[str, Any]], dict[str, Any]]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {self.user: pl.String, self.item: pl.String, self.time: pl.Int64, self.rating: pl.Float64}


# ---------------------------------------------------------------- public readers

def read_amazon2014(path: Path, cfg: PrepareConfig) -> Source:
    return _read(Path(path), cfg, AMAZON2014)


def read_amazon2018(path: Path, cfg: PrepareConfig) -> Source:
    return _read(Path(path), cfg, AMAZON2018)


def read_amazon2023(path: Path, cfg: PrepareConfig) -> Source:
    return _read(Path(path), cfg, AMAZON2023)


def stream_amazon2014(path: Path, cfg: PrepareConfig, workdir: Path) -> StreamSource:
    return _stream(Path(path), cfg, AMAZON2014, workdir)


def stream_amazon2018(path: Path, cfg: PrepareConfig, workdir: Path) -> StreamSource:
    return _stream(Path(path), cfg, AMAZON2018, workdir)


def stream_amazon2023(path: Path, cfg: PrepareConfig, workdir: Path) -> StreamSource:
    return _stream(Path(path), cfg, AMAZON2023, workdir)


def _read(path: Path, cfg: PrepareConfig, layout: Layout) -> Source:
    reviews_path, meta_path, category = find_files(path, layout, cfg.category)
    issues = Issues(cfg.strict)
    events = read_reviews(reviews_path, layout, issues)
    reviewed = set(events.get_column("item").unique().to_list())
    items, notes = _meta(reviews_path, meta_path, category, layout, reviewed, issues)
    files = [reviews_path] + ([meta_path] if meta_path else [])
    return Source(events, items, files, skipped=issues.counts, notes=notes)


def _stream(path: Path, cfg: PrepareConfig, layout: Layout, workdir: Path) -> StreamSource:
    """As :func:`_read`, with the events and the items written to Parquet files under ``workdir``."""
    reviews_path, meta_path, category = find_files(path, layout, cfg.category)
    issues = Issues(cfg.strict)
    events = stream_reviews(reviews_path, layout, issues, workdir)
    reviewed = distinct(events, "item")
    notes: dict[str, Any] = {"category": category, "review_file": reviews_path.name,
                             "meta_file": meta_path.name if meta_path else None}
    items: list[Path] = []
    with_meta = 0
    if meta_path is not None:
        items, meta_notes = stream_meta(meta_path, layout, reviewed, issues, workdir, BLOCK_BYTES)
        with_meta = meta_notes.pop("_items_with_meta")
        notes.update(meta_notes)
    notes["items_with_meta"] = with_meta
    notes["items_without_meta"] = reviewed.len() - with_meta
    if issues.examples:
        notes["skipped_examples"] = dict(issues.examples)
    files = [reviews_path] + ([meta_path] if meta_path else [])
    return StreamSource(events, items, files, skipped=issues.counts, notes=notes)


def distinct(files: list[Path], column: str) -> pl.Series:
    """The distinct values of a string column of Parquet files, in order of first sight, read in
    batches. (Polars' streaming unique or group-by on strings holds memory in proportion to the
    rows, not to the distinct values.)"""
    seen = pl.Series(column, [], dtype=pl.String)
    for df in batches(files, columns=[column]):
        seen = pl.concat([seen, df.get_column(column).cast(pl.String).unique(maintain_order=True)]).unique(
            maintain_order=True)
    return seen


def _meta(reviews_path: Path, meta_path: Path | None, category: str, layout: Layout, reviewed: set[str],
          issues: Issues) -> tuple[pl.DataFrame, dict[str, Any]]:
    notes: dict[str, Any] = {"category": category, "review_file": reviews_path.name,
                             "meta_file": meta_path.name if meta_path else None}
    if meta_path is None:
        items = pl.DataFrame(schema=ITEM_SCHEMA)
    else:
        items, meta_notes = read_meta(meta_path, layout, reviewed, issues, BLOCK_BYTES)
        notes.update(meta_notes)
    notes["items_with_meta"] = items.height
    notes["items_without_meta"] = len(reviewed) - items.height
    if issues.examples:
        notes["skipped_examples"] = dict(issues.examples)
    return items, notes


# ---------------------------------------------------------------- finding the files

def find_files(path: Path, layout: Layout, category: str | None) -> tuple[Path, Path | None, str]:
    """Return (reviews file, metadata file or None, category) for a folder or a reviews file."""
    if path.is_file():
        for pattern in layout.reviews:
            m = re.fullmatch(_pattern_regex(pattern), path.name)
            if m:
                return path, _find_meta(path.parent, layout, m["cat"]), m["cat"]
        raise DataError(f"not a {layout.name} reviews file name (expected {_expected(layout)})", path=path)
    if not path.is_dir():
        raise DataError("folder not found", path=path)
    if category is not None:
        for pattern in layout.reviews:
            candidate = path / pattern.format(cat=category)
            if candidate.is_file():
                return candidate, _find_meta(path, layout, category), category
        tried = ", ".join(p.format(cat=category) for p in layout.reviews)
        raise DataError(f"no {layout.name} reviews file for category {category!r}: looked for {tried}; "
                        f"found {_listing(path)}", path=path)
    found = _candidates(path, layout)
    if len(found) == 1:
        ((cat, reviews),) = found.items()
        return reviews, _find_meta(path, layout, cat), cat
    if not found:
        raise DataError(f"no {layout.name} reviews file: looked for {_expected(layout)}; found {_listing(path)}",
                        path=path)
    names = ", ".join(f"{cat} ({p.name})" for cat, p in sorted(found.items()))
    raise DataError(f"several categories found: {names}; set category to pick one", path=path)


def _pattern_regex(pattern: str) -> str:
    head, tail = pattern.split("{cat}")
    return re.escape(head) + r"(?P<cat>.+?)" + re.escape(tail)


def _candidates(folder: Path, layout: Layout) -> dict[str, Path]:
    """Category -> its preferred reviews file (5-core first, then full, gzip first)."""
    best: dict[str, tuple[int, Path]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("meta_"):
            continue
        for rank, pattern in enumerate(layout.reviews):
            m = re.fullmatch(_pattern_regex(pattern), f.name)
            if m:
                if m["cat"] not in best or rank < best[m["cat"]][0]:
                    best[m["cat"]] = (rank, f)
                break
    return {cat: p for cat, (_, p) in best.items()}


def _find_meta(folder: Path, layout: Layout, category: str) -> Path | None:
    for pattern in layout.meta:
        candidate = folder / pattern.format(cat=category)
        if candidate.is_file():
            return candidate
    return None


def _expected(layout: Layout) -> str:
    return ", ".join(p.replace("{cat}", "<Category>") for p in layout.reviews)


def _listing(folder: Path, limit: int = 20) -> str:
    names = sorted(f.name for f in folder.iterdir())
    if not names:
        return "an empty folder"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# ---------------------------------------------------------------- reviews

def read_reviews(path: Path, layout: Layout, issues: Issues) -> pl.DataFrame:
    """All events of a reviews file as ``user, item, timestamp, rating``, in file order."""
    events = _read_whole(path, layout)
    if events is None:
        # closing(): a strict error must stop the read-ahead thread now, not when the error is freed
        with contextlib.closing(_prefetch(iter_blocks(path, BLOCK_BYTES))) as blocks:
            frames = [_parse_block(block, first, path, layout, issues) for first, block in blocks]
        events = pl.concat(frames, how="vertical", rechunk=False) if frames else pl.DataFrame(schema=layout.schema)
    ts = pl.col(layout.time)
    if layout.time_divisor != 1:
        ts = ts // layout.time_divisor
    return events.select(pl.col(layout.user).alias("user"), pl.col(layout.item).alias("item"),
                         ts.alias("timestamp"), pl.col(layout.rating).alias("rating"))


def _read_whole(path: Path, layout: Layout) -> pl.DataFrame | None:
    """The fast path: one polars scan of the whole file, or None when anything is off.

    Polars inflates gzip about twice as fast as Python's zlib and streams it (the compressed
    file is memory-mapped, so its pages are page cache, not heap). Any error, an empty result
    or a bad ID sends the caller to the block path, which finds and names the bad line.
    """
    if not WHOLE_FILE_FIRST or any(c in str(path) for c in "*?["):  # polars would read these as a glob
        return None
    try:
        df = pl.scan_ndjson(path, schema=layout.schema).collect()
    except Exception:
        return None
    # Not rechunked: a copy of every column at the peak, for little gain downstream.
    return df if df.height and _ids_ok(df, layout) else None


def stream_reviews(path: Path, layout: Layout, issues: Issues, workdir: Path) -> list[Path]:
    """All events of a reviews file written as Parquet under ``workdir`` (``user, item,
    timestamp, rating``, in file order), in memory that does not grow with the file.

    The same two paths as :func:`read_reviews`: first one streaming polars scan of the whole
    file into one Parquet file (polars' streaming engine parses it in batches), checked for bad
    IDs afterwards by a second streaming scan; on any problem, the block path, one Parquet file
    per block. Returns the files in file order.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    whole = workdir / "events-whole.parquet"
    if WHOLE_FILE_FIRST and not any(c in str(path) for c in "*?["):
        try:
            _events(pl.scan_ndjson(path, schema=layout.schema, batch_size=65536), layout).sink_parquet(
                whole, engine="streaming", **SCRATCH)
            check = pl.scan_parquet(whole).select(pl.len().alias("rows"), _bad_ids("user", "item").alias("bad"))
            rows, bad = check.collect(engine="streaming").row(0)
            if rows and not bad:
                return [whole]
        except Exception:  # the block path below finds and names the problem
            pass
        whole.unlink(missing_ok=True)
    files = []
    with contextlib.closing(_prefetch(iter_blocks(path, BLOCK_BYTES))) as blocks:
        for k, (first, block) in enumerate(blocks):
            if k % 64 == 0:
                log.info("prepare: parsing %s by blocks, line %s", path.name, f"{first:,}")
            files.append(workdir / f"events-{k:07d}.parquet")
            _events(_parse_block(block, first, path, layout, issues).lazy(), layout).collect().write_parquet(
                files[-1], **SCRATCH)
    return files


def _events(lf: pl.LazyFrame, layout: Layout) -> pl.LazyFrame:
    ts = pl.col(layout.time)
    if layout.time_divisor != 1:
        ts = ts // layout.time_divisor
    return lf.select(pl.col(layout.user).alias("user"), pl.col(layout.item).alias("item"),
                     ts.alias("timestamp"), pl.col(layout.rating).alias("rating"))


def _bad_ids(*columns: str) -> pl.Expr:
    """Any missing, empty or object-valued ID (polars turns a JSON object into its text)."""
    return pl.any_horizontal([(pl.col(c).is_null() | (pl.col(c) == "") | pl.col(c).str.starts_with("{")
                               | pl.col(c).str.starts_with("[")).any() for c in columns])


def _ids_ok(df: pl.DataFrame, layout: Layout) -> bool:
    """No missing, empty or object-valued IDs."""
    return not df.select(_bad_ids(layout.user, layout.item)).item()


def _parse_block(block: bytes, first_line: int, path: Path, layout: Layout, issues: Issues) -> pl.DataFrame:
    try:
        df = pl.read_ndjson(io.BytesIO(block), schema=layout.schema)
    except Exception:  # polars reports bad JSON or a wrong type without the line: find it below
        return _parse_lines(block, first_line, path, layout, issues)
    # One chunk per block: polars' own chunks hold slack that adds up over a large file.
    return df.rechunk() if _ids_ok(df, layout) else _parse_lines(block, first_line, path, layout, issues)


def _parse_lines(block: bytes, first_line: int, path: Path, layout: Layout, issues: Issues) -> pl.DataFrame:
    """The slow, exact path for one block: every line checked on its own."""
    names = (layout.user, layout.item, layout.time, layout.rating)
    cols: dict[str, list[Any]] = {name: [] for name in names}
    for number, raw in enumerate(block.split(b"\n"), start=first_line):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError as exc:
            issues.bad(path, number, "malformed JSON", str(exc))
            continue
        if not isinstance(rec, dict):
            issues.bad(path, number, "line is not a JSON object", type(rec).__name__)
            continue
        values, problem = _check(rec, layout)
        if problem:
            issues.bad(path, number, problem)
            continue
        for name, value in zip(names, values):
            cols[name].append(value)
    return pl.DataFrame(cols, schema=layout.schema)


def _check(rec: dict[str, Any], layout: Layout) -> tuple[tuple[Any, ...], str | None]:
    """The four values of a record, or the reason it is unusable (same rules as the fast path)."""
    ids = []
    for name in (layout.user, layout.item):
        value = rec.get(name)
        if value is None or value == "":
            return (), f"missing required field {name!r}"
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return (), f"field {name!r} is not a string"
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            return (), f"field {name!r} holds an invalid unicode escape (a lone surrogate)"
        ids.append(str(value))
    ts = rec.get(layout.time)
    if isinstance(ts, float) and ts.is_integer():
        ts = int(ts)
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int) or not -2**63 <= ts < 2**63):
        return (), f"field {layout.time!r} is not an integer"
    rating = rec.get(layout.rating)
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, (int, float))):
        return (), f"field {layout.rating!r} is not a number"
    return (ids[0], ids[1], ts, None if rating is None else float(rating)), None


def _prefetch(blocks: Iterator[tuple[int, bytes]], depth: int = 2) -> Iterator[tuple[int, bytes]]:
    """Decompress the next blocks in a thread while this one is parsed (zlib and polars release the GIL)."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in blocks:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=produce, name="semid-gunzip", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the consumer stopped early (an error in strict mode): let the thread end
        worker.join()


AMAZON2014 = Layout(
    name="amazon2014",
    reviews=("reviews_{cat}_5.json.gz", "reviews_{cat}_5.json", "reviews_{cat}.json.gz", "reviews_{cat}.json"),
    meta=("meta_{cat}.json.gz", "meta_{cat}.json"),
    user="reviewerID", item="asin", time="unixReviewTime", rating="overall", time_divisor=1,
    meta_key="asin", meta_fields=fields_2014)

AMAZON2018 = Layout(
    name="amazon2018",
    reviews=("{cat}_5.json.gz", "{cat}_5.json", "{cat}.json.gz", "{cat}.json"),
    meta=("meta_{cat}.json.gz", "meta_{cat}.json"),
    user="reviewerID", item="asin", time="unixReviewTime", rating="overall", time_divisor=1,
    meta_key="asin", meta_fields=fields_2018)

AMAZON2023 = Layout(
    name="amazon2023",
    reviews=("{cat}.jsonl.gz", "{cat}.jsonl"),
    meta=("meta_{cat}.jsonl.gz", "meta_{cat}.jsonl"),
    user="user_id", item="parent_asin", time="timestamp", rating="rating", time_divisor=1000,
    meta_key="parent_asin", meta_fields=fields_2023)
