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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

ITEM_FIELDS = ("title", "brand", "categories", "price", "description")

INTERACTION_SCHEMA = {"user": pl.String, "item": pl.String, "timestamp": pl.Int64}
ITEM_SCHEMA = {"asin": pl.String, "title": pl.String, "brand": pl.String,
               "categories": pl.List(pl.String), "price": pl.String, "description": pl.String,
               "text": pl.String}


@dataclass
class Source:
    """What a reader returns. ``skipped`` counts lines dropped in lenient mode, by reason."""

    interactions: pl.DataFrame
    items: pl.DataFrame
    files: list[Path]
    skipped: Counter[str] = field(default_factory=Counter)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.interactions = conform(self.interactions, INTERACTION_SCHEMA, keep_extra=("rating",))
        self.items = conform(self.items, ITEM_SCHEMA)


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
