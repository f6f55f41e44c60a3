"""Logging through ``rich`` and progress bars that stay quiet when stderr is not a terminal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.logging import RichHandler
from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("semid")


def setup(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[handler], force=True)


def progress_enabled() -> bool:
    if os.environ.get("SEMID_PROGRESS") == "0":
        return False
    return os.environ.get("SEMID_PROGRESS") == "1" or sys.stderr.isatty()


def progress(it: Iterable[T] | None = None, *, desc: str, total: float | None = None,
             unit: str = "it", **kw) -> Iterator[T] | tqdm:
    """A tqdm bar on a TTY (or with SEMID_PROGRESS=1), silent otherwise."""
    return tqdm(it, desc=desc, total=total, unit=unit, disable=not progress_enabled(),
                dynamic_ncols=True, leave=False, **kw)
