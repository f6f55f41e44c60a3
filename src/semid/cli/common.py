"""Shared pieces of the CLI: the app, common options and error reporting."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from semid.core import log
from semid.core.config import lead_process
from semid.core.errors import SemidError
from semid.core.run import RunFolder, unlock

app = typer.Typer(
    name="semid",
    help="Semantic IDs for recommendation: Amazon Reviews data → Semantic IDs → TIGER and SID ranking.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of config values", exists=False)]
Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides as key=value", show_default=False)]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", "-d", help="named dataset: beauty, sports, scientific, office, toy")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="where raw and benchmark files live (env: SEMID_DATA_DIR)")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default: runs/<dataset>)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="recompute even when outputs are up to date")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")]


def data_dir(value: Path | None) -> Path | None:
    if value is not None:
        return value
    env = os.environ.get("SEMID_DATA_DIR")
    return Path(env) if env else None


DEFAULT_DATASET = "beauty"  # the run folder of a command given neither --out nor --dataset: runs/beauty


_LOCKS: dict[Path, int] = {}  # run folders this command holds; freed when it ends


def run_dir(out: Path | None, dataset: str | None) -> Path:
    """``--out``, else ``runs/<dataset>`` (``runs/beauty`` when no dataset is named either); the
    command holds the folder's lock until it ends, so two processes never write one run folder
    (the workers of a multi-process training run, which write nothing, leave it to rank 0)."""
    folder = out if out is not None else Path("runs") / (dataset or DEFAULT_DATASET)
    key = Path(folder).resolve()
    if key not in _LOCKS and lead_process():
        _LOCKS[key] = RunFolder(folder).lock("semid " + " ".join(sys.argv[1:]))
    return folder


def reports_errors(fn: F) -> F:
    """The one error boundary of every command: a failure the user can cause (a SemidError: bad
    option, missing or corrupt file, stale model) is one clear line and exit 2; Ctrl-C says what
    was kept (exit 130); anything else is one line too (exit 1). ``--verbose`` adds the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        log.setup(verbose=verbose)
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, Exception) as exc:
            if verbose:
                traceback.print_exc()
            if isinstance(exc, KeyboardInterrupt):
                typer.secho("interrupted; finished stages are kept and reused on the next run (--resume continues "
                            "training where its last finished epoch left off)", err=True)
                sys.exit(130)
            if isinstance(exc, SemidError):
                typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
                sys.exit(getattr(exc, "exit_code", 2))
            hint = "" if verbose else "; --verbose shows the traceback"
            typer.secho(f"error: unexpected {type(exc).__name__}: {exc}{hint}", fg=typer.colors.RED, err=True)
            sys.exit(1)
        finally:
            while _LOCKS:
                unlock(_LOCKS.popitem()[1])

    return wrapper  # type: ignore[return-value]
