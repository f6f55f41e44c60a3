"""Worker processes that never outlive the process that started them.

``semid compare --jobs 2`` trains cells in spawned processes. When the parent is killed (SIGTERM
from a scheduler, a closed terminal) a plain ``ProcessPoolExecutor`` leaves its workers training
on, holding CPUs and writing into the run folder. Each worker started here watches its parent and
exits as soon as the parent is gone; a SIGTERM (or Ctrl-C) to the parent kills the workers at once
and starts no queued job.

    with worker_pool(2) as pool:
        futures = [pool.submit(fn, *args) for args in jobs]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

POLL_S = 1.0


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:  # the parent died: this process was re-parented
            os._exit(70)


def _init(parent: int) -> None:
    threading.Thread(target=_watch, args=(parent,), name="semid-parent-watch", daemon=True).start()


def _terminate(pool: ProcessPoolExecutor) -> None:
    # SIGKILL, not SIGTERM: Lightning's Trainer in a worker turns SIGTERM into a SystemExit, which the
    # pool's worker loop takes for a failed job before it starts the next queued cell. A killed cell
    # resumes from its last checkpoint (written atomically), so nothing is lost by not waiting.
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()


@contextlib.contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A spawn-context process pool whose workers die with the caller (SIGTERM included)."""
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init, initargs=(os.getpid(),))
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: Any) -> None:
        _terminate(pool)
        raise SystemExit(128 + signum)

    if in_main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield pool
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM: stop the workers now
        _terminate(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:  # a failed job: start no new ones, let the running ones finish and save
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["worker_pool"]
