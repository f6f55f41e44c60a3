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
    import os, sys, time
    from semid.core.workers import worker_pool

    def train_forever(path):
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        while True:
            time.sleep(0.1)

    if __name__ == "__main__":
        with worker_pool(2) as pool:
            futures = [pool.submit(train_forever, f"{sys.argv[1]}.{i}") for i in range(2)]
            for f in futures:
                f.result()
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


def _start(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    script = tmp_path / "pool.py"
    script.write_text(SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "pid")],
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
