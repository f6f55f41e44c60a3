"""``semid run``: the whole pipeline, reusing finished stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DataDirOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, data_dir, reports_errors, run_dir
from semid.core import config as cfgmod
from semid.data.readers import FORMATS


@app.command("run")
@reports_errors
def run_cmd(
    overrides: Overrides = None,
    dataset: DatasetOpt = None,
    data_dir_: DataDirOpt = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
    until: Annotated[str | None, typer.Option("--until", help="stop after this stage")] = None,
    download_missing: Annotated[bool, typer.Option("--download-missing", help="download the dataset when it is not in --data-dir")] = False,
    mirror: Annotated[str | None, typer.Option("--mirror", help="base URL to download from instead of the official one")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="|".join(FORMATS))] = None,
    path: Annotated[Path | None, typer.Option("--path", help="folder (or file) of your own data in --format")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted training where its last finished epoch left off")] = False,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run every stage (prepare → …) on one dataset, a named one or your own folder (--format/--path);
    finished stages are reused.

    Overrides name the stage: `prepare.k_core=10`.
    """
    from semid.pipeline import STAGES, Context, RunConfig, run_all

    prepare = {k: v for k, v in {"dataset": dataset, "format": fmt}.items() if v}
    if path is not None and not dataset:  # a user's own folder is named after itself
        prepare["dataset"] = Path(path).resolve().name
    cfg = cfgmod.load(RunConfig, config, overrides, **({"prepare": prepare} if prepare else {}))
    if until is not None and until not in [n for n, _ in STAGES]:
        raise cfgmod.ConfigError(f"--until {until!r} is not a stage; stages: {', '.join(n for n, _ in STAGES)}")
    ddir = data_dir(data_dir_)
    if ddir is None and download_missing:
        ddir = Path("data")
    rdir = run_dir(out, cfg.prepare.dataset)
    done = run_all(cfg, rdir, Context(data_dir=ddir, path=path, force=force, download_missing=download_missing,
                                      mirror=mirror, resume=resume),
                   until=until)
    if "evaluate" in done:
        from semid.evaluate.results import run_table

        typer.echo(run_table(done["evaluate"], cfg.prepare.dataset))
    typer.echo(f"run folder: {rdir}  (stages: {', '.join(done)})")
