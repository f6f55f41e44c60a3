"""``semid serve`` in a child process on 127.0.0.1: started, awaited until its run is loaded, and
stopped with SIGTERM (what the browser test, the process test and the load benchmark drive).

    with child_server("runs/beauty", tmp / "server.log", "--model", "tiger") as server:
        httpx.post(f"{server.base}/recommend", json={"history": [0, 2]})
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from semid.core.errors import SemidError


@dataclass
class ChildServer:
    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen
    log: Path  # its output (a file: a pipe nobody reads fills up and stalls the server)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def child_server(run_dir: Path | str, log: Path, *options: str, timeout: float = 300) -> Iterator[ChildServer]:
    """Serve ``run_dir`` (with ``semid serve`` ``options``) on a free loopback port until the block ends."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from semid.cli import main; main()", "serve", str(run_dir),
                                 "--port", str(port), *options],
                                stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"SEMID_PROGRESS": "0"})
    server = ChildServer(f"http://127.0.0.1:{port}", proc, Path(log))
    try:
        end = time.monotonic() + timeout
        while not _ready(server):
            if proc.poll() is not None or time.monotonic() > end:
                raise SemidError(f"the server {'exited' if proc.poll() is not None else 'was not ready in time'}: "
                                 f"{Path(log).read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        stop(proc)


def _ready(server: ChildServer) -> bool:
    try:
        return httpx.get(f"{server.base}/models", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
