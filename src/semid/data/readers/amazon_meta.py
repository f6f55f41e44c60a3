"""The metadata files of the Amazon dumps (2014, 2018, 2023): one items table for the reviewed ASINs.

Metadata files hold far more items than any review file uses, so only the lines whose ASIN was
reviewed are parsed; a regex on the raw bytes picks them out (:func:`read_meta` in memory,
:func:`stream_meta` into Parquet files in memory that does not grow with the file). A line is
JSON, or (2014) one Python literal, read by ``ast.literal_eval``. Each release's fields
(:func:`fields_2014`, :func:`fields_2018`, :func:`fields_2023`) become ``title, brand,
categories, price, description``: text through :func:`~semid.data.text.clean_html`; categories
all paths of an item, flattened, duplicates dropped, first path first (so a word budget keeps the
most general path; the dataset's own top-level name is kept); prices ``"$12.99"``-like strings, anything else (page debris) dropped.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import polars as pl

from semid.data.lines import Issues, iter_blocks
from semid.data.source import ITEM_SCHEMA, SCRATCH
from semid.data.text import clean_html

if TYPE_CHECKING:
    from semid.data.readers.amazon import Layout

_SEP = "\x1f"


def read_meta(path: Path, layout: Layout, wanted: set[str], issues: Issues,
              block_bytes: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Items table for the ``wanted`` ASINs, read in blocks of ``block_bytes``; lines for other ASINs
    are never parsed."""
    key = _key_pattern(layout)
    wanted_bytes = {a.encode() for a in wanted}
    picked: set[bytes] = set()
    rows: dict[str, dict[str, Any]] = {}
    duplicates = lines = 0
    for first, block in iter_blocks(path, block_bytes):
        for number, raw in enumerate(block.split(b"\n"), start=first):
            m = key.search(raw)
            lines += m is not None or bool(raw.strip())
            if m is None or m[1] not in wanted_bytes:
                continue
            if m[1] in picked:  # a repeated line: the first one wins
                duplicates += 1
                continue
            picked.add(m[1])
            try:
                rec = _parse_meta_line(raw)
            except (ValueError, SyntaxError, RecursionError, MemoryError) as exc:
                issues.bad(path, number, "malformed metadata line", f"{type(exc).__name__}: {exc}")
                continue
            asin = rec.get(layout.meta_key) if isinstance(rec, dict) else None
            if isinstance(asin, str) and asin in wanted and asin not in rows:
                rows[asin] = {"asin": asin, **layout.meta_fields(rec)}
    return _items_frame(list(rows.values())), {"meta_lines": lines, "meta_duplicates": duplicates}


def _key_pattern(layout: Layout) -> re.Pattern[bytes]:
    """The item key of a metadata line, in JSON or Python-literal quotes, read off the raw bytes."""
    return re.compile(rb"""["']""" + layout.meta_key.encode() + rb"""["']\s*:\s*["']([^"']+)["']""")


def _items_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    columns = {name: pl.Series(name, [row[name] for row in rows], dtype=pl.String)
               for name in ("asin", "title", "brand", "price", "description")}
    # Lists go in joined by \x1f and are split by polars: building a list column from Python
    # lists is over 10x slower. clean_html leaves no \x1f (str.split() counts it as whitespace).
    cats = pl.Series("categories", [_SEP.join(row["categories"]) if row["categories"] else None
                                    for row in rows], dtype=pl.String)
    items = pl.DataFrame([*columns.values(), cats.str.split(_SEP)])
    return items.select(n for n in ITEM_SCHEMA if n != "text")


def stream_meta(path: Path, layout: Layout, wanted: pl.Series, issues: Issues, workdir: Path,
                block_bytes: int) -> tuple[list[Path], dict[str, Any]]:
    """:func:`read_meta` in memory that does not grow with the file: the items of each block are
    written to a Parquet file under ``workdir``. Which ASINs are wanted is a binary search in the
    sorted ``wanted`` column; which were seen or taken, two flags per wanted ASIN. Same rows,
    counts and errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = _key_pattern(layout)
    wanted = wanted.cast(pl.String).drop_nulls().unique().sort()
    picked = np.zeros(wanted.len(), dtype=bool)  # the ASIN's first line was seen (parsed or not)
    taken = np.zeros(wanted.len(), dtype=bool)  # the ASIN has its row

    def find(values: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """(is wanted, position in ``wanted``) of each value."""
        col = pl.Series(values, dtype=pl.String)
        pos = wanted.search_sorted(col).clip(0, max(wanted.len() - 1, 0))
        hit = (wanted.gather(pos) == col).fill_null(False) if wanted.len() else pl.Series([False] * col.len())
        return hit.to_numpy(), pos.to_numpy()

    files: list[Path] = []
    duplicates = lines = 0
    for k, (first, block) in enumerate(iter_blocks(path, block_bytes)):
        numbers, keys, raws = [], [], []
        for number, raw in enumerate(block.split(b"\n"), start=first):
            m = key.search(raw)
            lines += m is not None or bool(raw.strip())
            if m is not None:
                try:
                    keys.append(m[1].decode("utf-8"))
                except UnicodeDecodeError:  # never a wanted ASIN
                    continue
                numbers.append(number)
                raws.append(raw)
        hit, pos = find(keys)
        rows = []
        for i in np.flatnonzero(hit):
            if picked[pos[i]]:  # a repeated line: the first one wins
                duplicates += 1
                continue
            picked[pos[i]] = True
            try:
                rec = _parse_meta_line(raws[i])
            except (ValueError, SyntaxError, RecursionError, MemoryError) as exc:
                issues.bad(path, numbers[i], "malformed metadata line", f"{type(exc).__name__}: {exc}")
                continue
            asin = rec.get(layout.meta_key) if isinstance(rec, dict) else None
            if isinstance(asin, str):
                rows.append({"asin": asin, **layout.meta_fields(rec)})
        del numbers, keys, raws
        keep = []
        if rows:
            hit, pos = find([row["asin"] for row in rows])
            for i in np.flatnonzero(hit):
                if not taken[pos[i]]:
                    taken[pos[i]] = True
                    keep.append(rows[i])
        if keep:
            files.append(workdir / f"meta-{k:07d}.parquet")
            _items_frame(keep).write_parquet(files[-1], **SCRATCH)
    return files, {"meta_lines": lines, "meta_duplicates": duplicates, "_items_with_meta": int(taken.sum())}


def _parse_meta_line(raw: bytes) -> Any:
    try:  # orjson: 2-3x faster than json; what it refuses (bad UTF-8, NaN, lone surrogates, Python
        return orjson.loads(raw)  # literals) goes the old way. It reads integers past 64 bits as floats.
    except orjson.JSONDecodeError:
        pass
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        # 2014 metadata is one Python literal a line (single quotes); literal_eval runs no code.
        return ast.literal_eval(text.strip())


# Brands, categories and prices repeat across a catalogue: short values are cleaned once each.
_SHORT = 80
_clean_short = functools.lru_cache(maxsize=1 << 16)(clean_html)


def _clean(value: str) -> str | None:
    return _clean_short(value) if len(value) <= _SHORT else clean_html(value)


def _text(value: Any, repeats: bool = False) -> str | None:
    """A field as clean text; ``repeats``: a field whose values repeat across items (a brand)."""
    if isinstance(value, list):
        value = " ".join(value) if all(type(v) is str for v in value) else \
            " ".join(str(v) for v in value if v is not None and not isinstance(v, (list, dict)))
    if not isinstance(value, str):
        return None
    return _clean(value) if repeats else clean_html(value)


def _categories(value: Any) -> list[str] | None:
    """Flatten a list or a list of lists, cleaned, duplicates dropped, order kept."""
    flat: list[Any] = []
    for part in value if isinstance(value, list) else [value]:
        flat.extend(part if isinstance(part, list) else [part])
    return list(_clean_paths(tuple(c for c in flat if isinstance(c, str)))) or None


@functools.lru_cache(maxsize=1 << 14)
def _clean_paths(value: tuple[str, ...]) -> tuple[str, ...]:
    """Category names cleaned, empty and repeated ones dropped; once per distinct path (paths repeat)."""
    return tuple(dict.fromkeys(c for c in map(_clean, value) if c))


_PRICE = re.compile(r"[$€£]?\s?\d[\d,]*(\.\d+)?(\s?-\s?[$€£]?\s?\d[\d,]*(\.\d+)?)?")


def _price(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return f"${value:.2f}" if math.isfinite(value) and value >= 0 else None
    return _price_text(str(value))


@functools.lru_cache(maxsize=1 << 14)
def _price_text(value: str) -> str | None:
    text = clean_html(value)
    return text if text and _PRICE.fullmatch(text) else None


def fields_2014(rec: dict[str, Any]) -> dict[str, Any]:
    return {"title": _text(rec.get("title")), "brand": _text(rec.get("brand"), repeats=True),
            "categories": _categories(rec.get("categories")), "price": _price(rec.get("price")),
            "description": _text(rec.get("description"))}


def fields_2018(rec: dict[str, Any]) -> dict[str, Any]:
    return {"title": _text(rec.get("title")), "brand": _text(rec.get("brand"), repeats=True),
            "categories": _categories(rec.get("category")), "price": _price(rec.get("price")),
            "description": _text(rec.get("description"))}


def fields_2023(rec: dict[str, Any]) -> dict[str, Any]:
    parts: list[Any] = []
    for key in ("description", "features"):  # features appended: often the only text there is
        value = rec.get(key)
        parts.extend(value if isinstance(value, list) else [value])
    return {"title": _text(rec.get("title")), "brand": _text(rec.get("store"), repeats=True),
            "categories": _categories(rec.get("categories")) or _categories(rec.get("main_category")),
            "price": _price(rec.get("price")), "description": _text(parts)}
