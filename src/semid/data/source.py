"""The normalised form that every reader returns; everything after ``prepare`` is format-blind.

``interactions``: one row per event in file order, columns ``user`` (str), ``item`` (str, the
ASIN), ``timestamp`` (Int64 unix seconds, null where the source has none) and, for raw review
files, ``rating`` (Float64, nullable).

``items``: one row per item with metadata, columns ``asin`` plus any of :data:`ITEM_FIELDS`
(``categories`` is a list of str, the others str); a ready-made ``text`` column is allowed for
sources that ship item text only. Items without metadata may be absent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

ITEM_FIELDS = ("title", "brand", "categories", "price", "description")

# Parquet options of the streaming engine's scratch files, each read once or a few times: fast to
# write beats small
SCRATCH = {"compression": "lz4", "statistics": False}

INTERACTION_SCHEMA = {"user": pl.String, "item": pl.String, "timestamp": pl.Int64}
ITEM_SCHEMA = {"asin": pl.String, "title": pl.String, "brand": pl.String,
               "categories": pl.List(pl.String), "price": pl.String, "description": pl.String,
               "text": pl.String}


@dataclass
class Source:
    """What a reader returns. ``skipped`` counts lines dropped in lenient mode, by reason.
    ``upstream``: for events another engine cleaned already (the Spark job), what it read
    (``source_events``), dropped (``dropped_rows``) and applied (``k_core``, ``dedup``)."""

    interactions: pl.DataFrame
    items: pl.DataFrame
    files: list[Path]
    skipped: Counter[str] = field(default_factory=Counter)
    notes: dict[str, Any] = field(default_factory=dict)
    upstream: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.interactions = conform(self.interactions, INTERACTION_SCHEMA, keep_extra=("rating",))
        self.items = conform(self.items, ITEM_SCHEMA)


@dataclass
class StreamSource:
    """What a streaming reader returns: the events as Parquet files on disk instead of a table.

    ``events``: Parquet files, read in order, holding the ``interactions`` columns of
    :class:`Source` (``rating`` optional), one row per event in file order. ``items``: Parquet
    files of items, each ASIN once. The rest as in :class:`Source`.
    """

    events: list[Path]
    items: list[Path]  # Parquet files of items (the columns of ITEM_SCHEMA), one row per ASIN
    files: list[Path]
    skipped: Counter[str] = field(default_factory=Counter)
    notes: dict[str, Any] = field(default_factory=dict)

    def scan_items(self) -> pl.LazyFrame:
        """The items, conformed to :data:`ITEM_SCHEMA` (an empty table without metadata)."""
        return conform_items(pl.scan_parquet(self.items)) if self.items else empty_items().lazy()


def batches(files: list[Path], rows: int = 1 << 19, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
    """The rows of Parquet files, in order, ``rows`` at a time (each a slice query, which reads
    only the row groups it needs; memory holds one batch)."""
    for path in files:
        n = pl.scan_parquet(path).select(pl.len()).collect().item()
        for offset in range(0, n, rows):
            lf = pl.scan_parquet(path).slice(offset, rows)
            yield (lf.select(columns) if columns else lf).collect()


def conform_items(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """:func:`conform` to :data:`ITEM_SCHEMA`, for a table or a lazy scan."""
    names = frame.collect_schema().names()
    return frame.select([pl.col(n).cast(t) if n in names else pl.lit(None, dtype=t).alias(n)
                         for n, t in ITEM_SCHEMA.items()])


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType], keep_extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """Cast to ``schema``, adding missing columns as nulls; drop unknown columns."""
    cols = []
    for name, dtype in schema.items():
        if name in df.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    cols += [pl.col(c) for c in keep_extra if c in df.columns]
    return df.select(cols)


def empty_items() -> pl.DataFrame:
    return pl.DataFrame(schema=ITEM_SCHEMA)
