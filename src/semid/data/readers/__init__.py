"""The one table of source formats: one reader per format, ``read(path, cfg) -> Source`` (see
``semid.data.source``). Adding a format is one reader module and one entry in :data:`READERS`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from semid.data.config import PrepareConfig
    from semid.data.source import Source, StreamSource

Reader = Callable[[Path, "PrepareConfig"], "Source"]

# format -> "module:function", imported on first use (readers pull in their parsers only when used)
READERS: dict[str, str] = {
    "amazon2014": "semid.data.readers.amazon:read_amazon2014",
    "amazon2018": "semid.data.readers.amazon:read_amazon2018",
    "amazon2023": "semid.data.readers.amazon:read_amazon2023",
    "p5": "semid.data.readers.benchmark:read_p5",
    "gram": "semid.data.readers.benchmark:read_gram",
    "unisrec": "semid.data.readers.unisrec:read_unisrec",
    "csv": "semid.data.readers.csv:read_csv",
    "spark": "semid.data.readers.spark:read_spark",
    "toy": "semid.data.readers.toy:read_toy",
}


# formats whose reader can write the events to Parquet instead of holding them (see
# semid.data.streaming); the others are read whole and their table is written out
STREAM_READERS: dict[str, str] = {
    "amazon2014": "semid.data.readers.amazon:stream_amazon2014",
    "amazon2018": "semid.data.readers.amazon:stream_amazon2018",
    "amazon2023": "semid.data.readers.amazon:stream_amazon2023",
}

FORMATS: tuple[str, ...] = tuple(READERS)
RAW_FORMATS = ("amazon2014", "amazon2018", "amazon2023", "toy")  # cleaned and filtered by default


def get_reader(fmt: str) -> Reader:
    if fmt not in READERS:
        raise KeyError(f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    return _load(READERS[fmt])


def get_stream_reader(fmt: str) -> Callable[..., StreamSource] | None:
    """``read(path, cfg, workdir) -> StreamSource`` for formats that stream, else None."""
    return _load(STREAM_READERS[fmt]) if fmt in STREAM_READERS else None


def _load(target: str) -> Callable:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
