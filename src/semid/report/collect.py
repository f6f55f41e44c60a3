"""What a report reads: each path named on the command line, what kind of folder it is, and every
JSON file read on the way (kept for the provenance section).

Three kinds of folder are reported:

- a **run folder** (``semid run`` / ``semid compare`` / ``semid rank study`` / ``semid analyze``
  write into it; :class:`semid.core.run.RunFolder` names its paths);
- an **experiment folder** (``semid experiment``: ``experiment.{md,csv,json,png}``);
- a **results folder** (``results/``: the records ``--record`` writes, ``<dataset>/*.json``,
  ``<dataset>/rank_study.json``, ``experiments/<recipe>/``, and the papers' ``reference.json``).

Anything else is an error naming the path. Nothing here writes into the folders it reads, and no
run folder's lock is taken: a report can be made while a run is still writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.run import ANALYSIS, RunFolder
from semid.evaluate.results import STUDY

RUN, EXPERIMENT, RESULTS = "run folder", "experiment folder", "results folder"
EXPERIMENT_JSON = "experiment.json"
HOLDER = re.compile(r"^pid (\d+) \(`(.*)`, since ([^)]*)\)$")


@dataclass(frozen=True)
class Input:
    path: Path
    kind: str

    @property
    def label(self) -> str:
        return str(self.path)


@dataclass
class Context:
    """Shared by every section builder: the JSON files read (for provenance), what was already
    shown (so that identical data, IDs or studies reached through two inputs appear once), notes
    on what is missing, a scratch folder for figures made here, and the options."""

    scratch: Path
    cases: int = 3
    id_figures: tuple[str, ...] = ("*",)  # fnmatch patterns of the ID folders whose figures are shown
    files: dict[Path, tuple[Input, Any]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)
    missing: dict[Input, list[str]] = field(default_factory=dict)
    running: dict[Input, str] = field(default_factory=dict)

    def json(self, inp: Input, path: Path) -> Any:
        """A JSON file (a DataError naming it when broken), remembered for the provenance section."""
        return self.keep(inp, path, artifacts.read_json(path))

    def keep(self, inp: Input, path: Path, obj: Any) -> Any:
        """Remember a file read for the provenance section."""
        self.files[Path(path)] = (inp, obj)
        return obj

    def manifest(self, inp: Input, folder: Path, name: str = artifacts.MANIFEST) -> dict[str, Any] | None:
        path = Path(folder) / name
        return self.json(inp, path) if path.is_file() else None

    def first(self, key: str, where: str) -> str | None:
        """Where ``key`` was shown before (None the first time; ``where`` is remembered)."""
        if key in self.seen:
            return self.seen[key]
        self.seen[key] = where
        return None

    def absent(self, inp: Input, what: str) -> None:
        self.missing.setdefault(inp, []).append(what)


def kind_of(path: Path) -> str:
    """The kind of folder ``path`` is; a DataError naming it when it is none of the three."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist: pass run folders (e.g. runs/beauty), experiment folders "
                        "(runs/experiments/<recipe>) or a results folder (results)")
    if not path.is_dir():
        raise DataError(f"{path} is a file: pass a run folder, an experiment folder or a results folder")
    if (path / EXPERIMENT_JSON).is_file():
        return EXPERIMENT
    run = RunFolder(path)
    if any(p.is_dir() for p in (run.data, run.embed, run.ids_root, run.models_root, run.compare, run.study, run.analysis)):
        return RUN
    if (path / "reference.json").is_file() or any(path.glob(f"*/{STUDY}")) or any(path.glob("*/comparison.json")) \
            or any(path.glob(f"experiments/*/{EXPERIMENT_JSON}")):
        return RESULTS
    raise DataError(f"{path} is neither a run folder (no data/, embed/, ids/, models/, compare/, study/ or analysis/), "
                    f"nor an experiment folder (no {EXPERIMENT_JSON}), nor a results folder (no reference.json or "
                    f"<dataset>/{STUDY}): nothing to report")


def inputs(paths: list[Path]) -> list[Input]:
    """Every path's kind, checked before anything is read; a path named twice counts once."""
    if not paths:
        raise DataError("name at least one run, experiment or results folder to report on")
    out: dict[Path, Input] = {}
    for p in paths:
        out.setdefault(Path(p).resolve(), Input(Path(p), kind_of(Path(p))))
    return list(out.values())


def writer(root: Path) -> str | None:
    """The command holding a run folder's lock while it still runs (e.g. an unfinished
    ``semid compare``), from ``.semid.lock``; None when no live semid process holds it."""
    m = HOLDER.match(RunFolder(root).holder() or "")
    if m is None:
        return None
    pid = int(m.group(1))
    try:
        alive = "semid" in " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        alive = False
    return f"`{m.group(2)}` is still running (pid {pid}, since {m.group(3)})" if alive else None


__all__ = ["Input", "Context", "inputs", "kind_of", "writer", "RUN", "EXPERIMENT", "RESULTS", "ANALYSIS"]
