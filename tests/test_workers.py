"""Worker processes of ``semid compare --jobs N`` never outlive the parent (SIGTERM or a kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from semid.core.workers import worker_pool

    def train_forever(path, like_lightning):
        stop = []
        if like_lightning:  # Lightning's Trainer catches SIGTERM and raises SystemExit at the next step
            signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        while True:
            time.sleep(0.1)
            if stop:
                raise SystemExit(143)

    if __name__ == "__main__":
        jobs, like_lightning = int(sys.argv[2]), sys.argv[3] == "1"
        with worker_pool(2) as pool:
            futures = [pool.submit(train_forever, f"{sys.argv[1]}.{i}", like_lightning) for i in range(jobs)]
            for f in futures:
                f.result()
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


def _start(tmp_path: Path, jobs: int = 2, like_lightning: bool = False) -> tuple[subprocess.Popen, list[int]]:
    script = tmp_path / "pool.py"
    script.write_text(SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "pid"), str(jobs), str(int(like_lightning))],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    files = [tmp_path / f"pid.{i}" for i in range(2)]
    deadline = time.time() + 120
    while not all(f.exists() for f in files):
        assert parent.poll() is None, "the pool script died before its workers started"
        assert time.time() < deadline, "workers never started"
        time.sleep(0.2)
    return parent, [int(f.read_text()) for f in files]


def _gone(pids: list[int], within: float = 15.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_workers_die_with_their_parent(tmp_path, sig):
    parent, workers = _start(tmp_path)
    try:
        assert all(_alive(p) for p in workers)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert _gone(workers), f"workers {workers} still running after the parent got {sig.name}"
    finally:
        parent.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc (Linux)")
def test_sigterm_stops_workers_that_catch_it_and_starts_no_queued_job(tmp_path):
    """Lightning's Trainer turns SIGTERM into a SystemExit that the pool's worker loop catches as a
    failed job, and then takes the next queued cell: a scheduler's SIGTERM must still stop the
    whole experiment at once, with no new cell started (the killed cells resume from checkpoints)."""
    parent, workers = _start(tmp_path, jobs=6, like_lightning=True)
    try:
        t0 = time.time()
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        assert time.time() - t0 < 10, "the parent took more than 10 s to stop"
        assert _gone(workers, within=5), f"workers {workers} still running after the parent got SIGTERM"
        time.sleep(1.5)
        started = sorted(p.name for p in tmp_path.glob("pid.*") if not p.name.endswith(".tmp"))
        assert started == ["pid.0", "pid.1"], f"queued jobs started after SIGTERM: {started}"
    finally:
        parent.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
