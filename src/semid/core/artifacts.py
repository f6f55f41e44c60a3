"""Artifacts on disk: atomic writes, fingerprints and the per-stage ``manifest.json``.

A stage writes into its own folder of the run folder and records a manifest with its resolved
config, the fingerprints of its inputs and outputs, package versions, seed and wall time. Given
the same config and inputs, :func:`is_fresh` lets the stage reuse what it wrote before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import psutil

from semid.core.errors import DataError

T = TypeVar("T")
MANIFEST = "manifest.json"
DETERMINISM = ("the same config, seed and thread count give byte-identical outputs on CPU; on a GPU, cuDNN and "
               "cuBLAS pick kernels whose float sums may differ between runs and devices (training runs with "
               "deterministic=False), and bf16/fp16 autocast changes numbers")
_PACKAGES = ("semid", "torch", "numpy", "polars", "pyarrow", "pydantic", "faiss-cpu",
             "sentence-transformers", "lightning")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are for everyone to read
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file; a broken one is a DataError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}): it was edited or cut short; "
                        "re-run the command that wrote it with --force") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file: re-run the command that wrote it with --force") from None


def fingerprint_file(path: Path, chunk: int = 1 << 22) -> str:
    """blake2b of the file's bytes (streamed)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint_value(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def read_with(path: Path, reader: Callable[[str], T]) -> T:
    """``reader(path)`` (parquet, safetensors, npy, …); a damaged file is a DataError naming it."""
    try:
        return reader(str(path))
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except Exception as exc:  # every reader has its own error types
        raise DataError(f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:160]}): it was cut short, edited or "
                        "is not what it should be; re-run the command that wrote it with --force") from None


def file_stat(path: Path) -> list[int]:
    """(size, modification time in ns): what tells a file unchanged without reading it."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def current_fingerprint(path: Path, manifest: Mapping[str, Any] | None) -> str:
    """The fingerprint of ``path`` now: the one ``manifest`` recorded when size and modification
    time are unchanged since, else the file is hashed again (so an edited or truncated output
    never passes for the one the manifest describes)."""
    path = Path(path)
    if manifest:
        known = manifest.get("outputs", {}).get(path.name)
        if known and manifest.get("output_stats", {}).get(path.name) == file_stat(path):
            return known
    return fingerprint_file(path)


def fingerprint_inputs(paths: Mapping[str, Path]) -> dict[str, str]:
    """Fingerprint named input files (an upstream stage's output is not read again while its size
    and modification time are what that stage's manifest recorded)."""
    return {name: current_fingerprint(Path(path), load_manifest(Path(path).parent))
            for name, path in sorted(paths.items())}


def changed_outputs(stage_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Outputs listed in ``manifest`` that are missing or no longer what the stage wrote."""
    bad = []
    for name, fp in manifest.get("outputs", {}).items():
        path = Path(stage_dir) / name
        if not path.is_file() or current_fingerprint(path, manifest) != fp:
            bad.append(name)
    return bad


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what the platform reports)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The machine as detected (never typed by hand): CPU model and cores, memory, GPU, torch threads."""
    info: dict[str, Any] = {"host": socket.gethostname(), "machine": platform.machine(), "cpu_model": cpu_model(),
                            "cpus": os.cpu_count()}
    with contextlib.suppress(Exception):
        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    torch = sys.modules.get("torch")  # only a stage that uses torch pays for importing it
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                info["gpu"] = torch.cuda.get_device_name(0)
    return info


def describe_hardware(hw: Mapping[str, Any]) -> str:
    """One line for tables: ``"2 × Intel Xeon … (x86_64), 23.5 GiB, no GPU"``."""
    gpu = f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU"
    return f"{hw.get('cpus')} × {hw.get('cpu_model') or hw.get('machine')}, {hw.get('memory_gib')} GiB, {gpu}"


OUTPUTS = ("results", "docs", "*.md")  # written by runs and people, never read by a computation


@functools.cache
def _git(source: str) -> tuple[str | None, bool | None]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", source, *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # results and documentation are what runs write, not what they compute from
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":(exclude){p}" for p in OUTPUTS)))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def git_state() -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the semid source checkout (None, None for an installed wheel);
    ``dirty``: uncommitted changes to tracked files outside :data:`OUTPUTS`.

    Read once per process: a long run records the code it started with."""
    source = Path(__file__).resolve().parents[3]
    commit, dirty = _git(str(source)) if (source / ".git").exists() else (None, None)
    return {"commit": commit, "dirty": dirty}


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    prog = Path(sys.argv[0]).name if sys.argv else "python"
    return " ".join([shlex.quote("semid" if prog in ("semid", "__main__.py") else prog),
                     *(shlex.quote(a) for a in sys.argv[1:])])


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def provenance(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What produced a result, recorded by the code: git commit and dirty flag, package versions,
    detected hardware, the command line, the date and the config's hash."""
    out = {"git": git_state(), "versions": package_versions(), "hardware": hardware(), "command": command_line(),
           "date": now()}
    if config is not None:
        out["config_hash"] = fingerprint_value(dict(config))
    return out


def load_manifest(stage_dir: Path, name: str = MANIFEST) -> dict[str, Any] | None:
    """A stage folder's manifest; None when there is none or it is unreadable (the stage then reruns)."""
    path = Path(stage_dir) / name
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except DataError:
        return None


def is_fresh(stage_dir: Path, config: Mapping[str, Any], inputs: Mapping[str, str], *,
             manifest: str = MANIFEST) -> bool:
    """True when the stage folder holds a complete run for this exact config and these inputs
    (``manifest``: the manifest's file name, for a folder that holds several stages' outputs)."""
    manifest = load_manifest(stage_dir, manifest)
    if manifest is None or manifest.get("status") != "complete":
        return False
    if manifest.get("config_fingerprint") != fingerprint_value(dict(config)):
        return False
    if manifest.get("inputs") != dict(inputs):
        return False
    return not changed_outputs(stage_dir, manifest)


class StageRun:
    """Times a stage and writes its manifest once every output exists.

    >>> with StageRun("prepare", out_dir, config, inputs, seed=0) as run:
    ...     write outputs into out_dir
    ...     run.extra["counts"] = {...}
    """

    def __init__(self, stage: str, stage_dir: Path, config: Mapping[str, Any],
                 inputs: Mapping[str, str], *, seed: int | None = None, manifest: str = MANIFEST):
        self.stage, self.dir, self.manifest = stage, Path(stage_dir), manifest
        self.config, self.inputs, self.seed = dict(config), dict(inputs), seed
        self.extra: dict[str, Any] = {}
        self.outputs: list[str] = []

    def __enter__(self) -> StageRun:
        self.dir.mkdir(parents=True, exist_ok=True)
        old = self.dir / self.manifest
        if old.exists():
            old.unlink()  # a half-finished rewrite must never look complete
        self.t0 = time.perf_counter()
        self.started = now()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        names = self.outputs or sorted(p.name for p in self.dir.iterdir()
                                       if p.is_file() and p.name != self.manifest and not p.name.startswith("."))
        manifest = {
            "stage": self.stage,
            "status": "complete",
            "config": self.config,
            "config_fingerprint": fingerprint_value(self.config),
            "inputs": self.inputs,
            "outputs": {n: fingerprint_file(self.dir / n) for n in names},
            "output_stats": {n: file_stat(self.dir / n) for n in names},
            "seed": self.seed,
            "started": self.started,
            "wall_time_s": round(time.perf_counter() - self.t0, 3),
            "versions": package_versions(),
            "hardware": hardware(),
            "git": git_state(),
            "command": command_line(),
            "determinism": DETERMINISM,
            **self.extra,
        }
        write_json(self.dir / self.manifest, manifest)
