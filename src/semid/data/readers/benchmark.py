"""Readers for the P5 (``sequential_data.txt`` + ``datamaps.json``) and GRAM
(``user_sequence.txt``) benchmark files, with their optional item-text files.

Neither format has timestamps: each line is one user's items in chronological order, so file
order is the time order. Item text comes, where present, from ``metadata/titles.tsv``
(``asin<TAB>title``), ``metadata/attributes.tsv`` (``asin<TAB>brand|category|...``) and an
``ASIN<space>text`` keyword file (IDGenRec's), which fills in titles that are missing.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.lines import Issues, iter_lines
from semid.data.source import Source, empty_items
from semid.data.text import clean_html

KEYWORD_FILES = ("idgenrec/item_generative_indexing_phase_0.txt", "item_generative_indexing_phase_0.txt", "item_text.txt")


def _find(path: Path, *candidates: str) -> Path | None:
    for c in candidates:
        if (path / c).is_file():
            return path / c
    return None


def _sequences_to_frame(users: list[str], seqs: list[list[str]]) -> pl.DataFrame:
    return pl.DataFrame({
        "user": [u for u, s in zip(users, seqs) for _ in s],
        "item": [i for s in seqs for i in s],
        "timestamp": None,
    }, schema={"user": pl.String, "item": pl.String, "timestamp": pl.Int64})


def read_p5(path: Path, cfg: PrepareConfig) -> Source:
    path = Path(path)
    seq_file = _find(path, "p5/sequential_data.txt", "sequential_data.txt")
    map_file = _find(path, "p5/datamaps.json", "datamaps.json")
    if seq_file is None or map_file is None:
        raise DataError("P5 format needs sequential_data.txt and datamaps.json (in the folder or its p5/ subfolder)", path=path)
    try:
        maps = json.loads(map_file.read_text())
        id2user, id2item = maps["id2user"], maps["id2item"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise DataError(f"not a P5 datamaps file ({exc!r}); expected keys id2user and id2item", path=map_file) from None
    issues = Issues(cfg.strict)
    users, seqs = [], []
    for n, line in iter_lines(seq_file):
        parts = line.split()
        try:
            user = id2user[parts[0]]
            items = [id2item[p] for p in parts[1:]]
        except KeyError as exc:
            issues.bad(seq_file, n, f"id {exc.args[0]} is not in datamaps.json")
            continue
        if not items:
            issues.bad(seq_file, n, "user line without items")
            continue
        users.append(user)
        seqs.append(items)
    items = read_item_text(path, maps, issues)
    return Source(_sequences_to_frame(users, seqs), items.frame, [seq_file, map_file, *items.files],
                  skipped=issues.counts, notes=items.notes)


def read_gram(path: Path, cfg: PrepareConfig) -> Source:
    path = Path(path)
    seq_file = _find(path, "gram/user_sequence.txt", "user_sequence.txt")
    if seq_file is None:
        raise DataError("GRAM format needs user_sequence.txt (in the folder or its gram/ subfolder)", path=path)
    issues = Issues(cfg.strict)
    users, seqs = [], []
    for n, line in iter_lines(seq_file):
        parts = line.split()
        if len(parts) < 2:
            issues.bad(seq_file, n, "user line without items")
            continue
        users.append(parts[0])
        seqs.append(parts[1:])
    maps = None
    if (map_file := _find(path, "p5/datamaps.json", "datamaps.json")) is not None:
        maps = json.loads(map_file.read_text())
    items = read_item_text(path, maps, issues)
    return Source(_sequences_to_frame(users, seqs), items.frame, [seq_file, *items.files],
                  skipped=issues.counts, notes=items.notes)


class ItemText:
    def __init__(self, frame: pl.DataFrame, files: list[Path], notes: dict):
        self.frame, self.files, self.notes = frame, files, notes


def read_item_text(path: Path, maps: dict | None, issues: Issues) -> ItemText:
    """Titles, brand/categories and keyword text from whichever item-text files are present."""
    titles: dict[str, str] = {}
    attrs: dict[str, list[str]] = {}
    keywords: dict[str, str] = {}
    files: list[Path] = []
    if (f := _find(path, "metadata/titles.tsv", "titles.tsv")) is not None:
        files.append(f)
        for _, line in iter_lines(f, skip_header=True):
            asin, _, title = line.partition("\t")
            if (title := clean_html(title)) is not None:
                titles[asin] = title
    if (f := _find(path, "metadata/attributes.tsv", "attributes.tsv")) is not None:
        files.append(f)
        for _, line in iter_lines(f, skip_header=True):
            asin, _, names = line.partition("\t")
            attrs[asin] = [clean_html(x) or x for x in names.split("|") if x]
    elif maps is not None and (f := _s3rec_file(path)) is not None:
        files.append(f)
        attrs = _attributes_from_s3rec(f, maps)
    if (f := _find(path, *KEYWORD_FILES)) is not None:
        files.append(f)
        for _, line in iter_lines(f):
            asin, _, text = line.partition(" ")
            if text.strip():
                keywords[asin] = text.strip()
    brand, categories = _split_brand(attrs)
    asins = sorted(set(titles) | set(attrs) | set(keywords))
    if not asins:
        return ItemText(empty_items(), files, {"item_text_files": []})
    title_col, source_col = [], Counter()
    for a in asins:
        if a in titles:
            title_col.append(titles[a])
            source_col["title"] += 1
        elif a in keywords:
            title_col.append(keywords[a])
            source_col["keywords"] += 1
        else:
            title_col.append(None)
            source_col["none"] += 1
    frame = pl.DataFrame({
        "asin": asins,
        "title": title_col,
        "brand": [brand.get(a) for a in asins],
        "categories": [categories.get(a, []) for a in asins],
    }, schema_overrides={"categories": pl.List(pl.String)})
    notes = {"item_text_files": [str(p) for p in files], "title_source_counts": dict(source_col)}
    return ItemText(frame, files, notes)


def _s3rec_file(path: Path) -> Path | None:
    folder = path / "s3rec"
    hits = sorted(folder.glob("*_item2attributes.json")) if folder.is_dir() else []
    return hits[0] if len(hits) == 1 else None


def _attributes_from_s3rec(path: Path, maps: dict) -> dict[str, list[str]]:
    """Name S3-Rec's attribute integers through P5's ``id2attribute``.

    S3-Rec kept the P5 attributes seen on at least 5 items and renumbered them from 1 in P5 order
    (checked on Beauty: 637 attributes, every count equal), so the k-th kept one is number k.
    """
    if "id2attribute" not in maps or "attributeid2num" not in maps:
        return {}
    kept = [maps["id2attribute"][k] for k in sorted(maps["id2attribute"], key=int)
            if int(maps["attributeid2num"].get(k, 0)) >= 5]
    raw = json.loads(path.read_text())
    out = {}
    for item_int, ids in raw.items():
        asin = maps["id2item"].get(str(item_int))
        if asin is not None:
            out[asin] = [clean_html(kept[i - 1]) or kept[i - 1] for i in ids if 0 < i <= len(kept)]
    return out


def _split_brand(attrs: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Attribute lists hold an optional brand, then the category path.

    A brand only ever stands first; top-level categories stand first on items without a
    brand and second on items with one; sub-categories never stand first. So a name seen first
    but never later in any list is a brand.
    """
    later = {x for names in attrs.values() for x in names[1:]}
    brand, cats = {}, {}
    for asin, names in attrs.items():
        if names and names[0] not in later:
            # "Unknown" is a frequent brand value in the 2014 metadata: no information
            if names[0].lower() != "unknown":
                brand[asin] = names[0]
            cats[asin] = names[1:]
        else:
            cats[asin] = names
    return brand, cats
