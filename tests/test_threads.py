"""CPU threads: a stage's count is restored afterwards, and a crowded CPU is measured and named."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import torch

from semid.core import threads as T


def test_the_thread_count_is_restored_after_the_block():
    before = torch.get_num_threads()
    with T.threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n,busy,ncores,free", [
    (2, 1.0, 2, 1),     # the measured 36x case: a 2-thread job beside a 1-thread one on 2 cores
    (2, 2.0, 2, 1),     # nothing is free: still suggest one thread
    (8, 10.0, 16, 6),   # 6 cores are left
])
def test_threads_beyond_the_free_cores_are_named_with_the_count_that_fits(n, busy, ncores, free):
    warning = T.oversubscribed(n, busy=busy, ncores=ncores)
    assert warning is not None and f"{busy:.1f} of {ncores}" in warning
    assert f"threads={free} in `semid train` (tiger.threads={free} in `semid run`, compare.threads={free} in" in warning


@pytest.mark.parametrize("n,busy,ncores", [
    (1, 2.0, 2),        # one thread cannot spin-wait on itself
    (2, 0.3, 2),        # others are almost idle
    (4, 3.0, 16),       # room enough
    (2, 0.9, 4),
])
def test_threads_that_fit_give_no_warning(n, busy, ncores):
    assert T.oversubscribed(n, busy=busy, ncores=ncores) is None


def test_a_busy_process_elsewhere_is_measured():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert T.busy_elsewhere(0.5) >= 0.6
    finally:
        spinner.kill()
        spinner.wait()


def test_this_process_own_work_is_not_counted_as_elsewhere():
    quiet = T.busy_elsewhere(0.5)
    stop = threading.Event()
    spin = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)], daemon=True)
    spin.start()
    try:
        time.sleep(0.2)
        assert T.busy_elsewhere(0.5) < quiet + 0.5
    finally:
        stop.set()
        spin.join()


@pytest.mark.parametrize("jobs,n,ncores,fix", [
    (2, 2, 2, "compare.threads=1"),                      # two cells at torch's default on 2 cores
    (3, 1, 2, "compare.threads=1 and compare.jobs=2"),   # more cells than cores
    (4, 4, 8, "compare.threads=2"),
])
def test_side_by_side_cells_beyond_the_cores_are_named_with_settings_that_fit(jobs, n, ncores, fix):
    warning = T.side_by_side(jobs, n, ncores=ncores)
    assert warning is not None and warning.endswith(fix) and f"need {jobs * n} of {ncores}" in warning


@pytest.mark.parametrize("jobs,n,ncores", [(1, 8, 2), (2, 1, 2), (4, 4, 16)])
def test_side_by_side_cells_that_fit_give_no_warning(jobs, n, ncores):
    assert T.side_by_side(jobs, n, ncores=ncores) is None


def test_an_experiment_warns_before_its_cells_start_when_they_would_not_fit(monkeypatch, caplog):
    from semid.experiments import compare
    from semid.models.sidrec.config import SIDRecConfig

    class Started(Exception):
        pass

    def pool(jobs):
        raise Started

    monkeypatch.setattr(T, "cores", lambda: 2)
    monkeypatch.setattr(compare, "worker_pool", pool)
    cells = [compare.Cell("sid-gru", "sid-gru", SIDRecConfig(seed=s), "test") for s in (0, 1)]
    for threads, warned in ((None, True), (2, True), (1, False)):
        caplog.clear()
        cfg = compare.CompareConfig(models=["sid-gru"], jobs=2, threads=threads)
        with caplog.at_level("WARNING", logger="semid"), pytest.raises(Started), T.threads(2):
            compare.execute(cells, cfg, force=False)
        assert any("cells side by side × 2 threads" in r.getMessage() for r in caplog.records) == warned


def test_only_the_cpus_this_process_may_use_are_counted(monkeypatch):
    """In a container pinned to CPUs 0 and 2 of a 4-CPU host, load on CPUs 1 and 3 is not ours to wait on."""
    monkeypatch.setattr(T, "_allowed", lambda: {0, 2})
    monkeypatch.setattr(T.psutil, "cpu_percent", lambda window=None, percpu=False: [50.0, 100.0, 30.0, 100.0])
    monkeypatch.setattr(T.psutil.Process, "cpu_percent", lambda self, interval=None: 20.0)
    assert T.cores() == 2
    assert T.busy_elsewhere(0.0) == pytest.approx(0.5 + 0.3 - 0.2)
