"""One reader per source format. Each is ``read(path, cfg) -> Source`` (see ``semid.data.source``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from semid.data.config import PrepareConfig
from semid.data.source import Source

Reader = Callable[[Path, PrepareConfig], Source]

# format -> "module:function", imported on first use
READERS: dict[str, str] = {
    "amazon2014": "semid.data.readers.amazon:read_amazon2014",
    "amazon2018": "semid.data.readers.amazon:read_amazon2018",
    "amazon2023": "semid.data.readers.amazon:read_amazon2023",
    "p5": "semid.data.readers.benchmark:read_p5",
    "gram": "semid.data.readers.benchmark:read_gram",
    "unisrec": "semid.data.readers.unisrec:read_unisrec",
    "csv": "semid.data.readers.csv:read_csv",
    "toy": "semid.data.readers.toy:read_toy",
}


def get_reader(fmt: str) -> Reader:
    if fmt not in READERS:
        raise KeyError(f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    module, func = READERS[fmt].split(":")
    return getattr(importlib.import_module(module), func)
