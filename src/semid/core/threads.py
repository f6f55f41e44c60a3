"""One way to set the CPU thread count: a scope that restores the previous count on exit.

    with threads(cfg.threads):      # None leaves torch's current count
        train(...)

torch and faiss (OpenMP) are set together, so a stage's choice never leaks into the next stage of
``semid run`` or ``semid compare``.

``oversubscribed(n)`` says when ``n`` threads plus what other processes keep busy exceed the CPU's
cores: OpenMP threads that wait on a busy core spin, and one 2-thread TIGER beside a 1-thread job
on a 2-core CPU trained 36× slower (103 examples/s against about 3,700). Training warns about it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import psutil
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


def _allowed() -> set[int] | None:
    """The CPUs this process may run on (``None`` where the OS does not say)."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def cores() -> int:
    """CPU cores this process may run on."""
    allowed = _allowed()
    return len(allowed) if allowed else os.cpu_count() or 1


def busy_elsewhere(window: float = 0.25) -> float:
    """Cores kept busy by other processes over the next ``window`` seconds, on the CPUs this process may
    use (a container's share of a larger host), this process excluded."""
    me = psutil.Process()
    me.cpu_percent(None)  # starts this process's count
    per_cpu = psutil.cpu_percent(window, percpu=True)  # blocks for the window
    allowed = _allowed()
    busy = sum(p for i, p in enumerate(per_cpu) if allowed is None or i in allowed) / 100
    return max(0.0, busy - me.cpu_percent(None) / 100)


def oversubscribed(n: int, *, busy: float | None = None, ncores: int | None = None) -> str | None:
    """A warning when ``n`` threads beside the cores others keep busy exceed the CPU; ``None`` when they fit.
    It names the key that sets the thread count in each command that trains."""
    if n <= 1:
        return None
    ncores = ncores or cores()
    busy = busy_elsewhere() if busy is None else busy
    if busy < 0.5 or n + busy <= ncores + 0.5:
        return None
    free = max(1, int(ncores - busy + 0.5))
    return (f"other processes keep {busy:.1f} of {ncores} CPU cores busy, and this job uses {n} threads: waiting "
            f"threads spin on busy cores, which has slowed training many-fold (36× measured on 2 cores). Set "
            f"threads={free} in `semid train` (tiger.threads={free} in `semid run`, compare.threads={free} in `semid "
            f"compare` and `semid experiment`), or wait for the other jobs")


def side_by_side(jobs: int, n: int, *, ncores: int | None = None) -> str | None:
    """A warning when ``jobs`` processes of ``n`` threads each would not fit the cores; ``None`` when they fit."""
    ncores = ncores or cores()
    if jobs <= 1 or jobs * n <= ncores:
        return None
    fit = max(1, ncores // jobs)
    return (f"{jobs} cells side by side × {n} threads each need {jobs * n} of {ncores} CPU cores: waiting threads spin "
            f"on busy cores, which has slowed training many-fold. Set compare.threads={fit}"
            + ("" if ncores >= jobs else f" and compare.jobs={ncores}"))
