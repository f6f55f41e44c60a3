"""One way to set the CPU thread count: a scope that restores the previous count on exit.

    with threads(cfg.threads):      # None leaves torch's current count
        train(...)

torch and faiss (OpenMP) are set together, so a stage's choice never leaks into the next stage of
``semid run`` or ``semid compare``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines about CPU variants are noise
import faiss  # noqa: E402  (after quieting its loader)


def set_count(n: int) -> None:
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` threads (``None``: keep the current count); restore afterwards."""
    before = torch.get_num_threads()
    if n:
        set_count(n)
    try:
        yield torch.get_num_threads()
    finally:
        set_count(before)
