"""``semid experiment RECIPE``: a grid over run-level keys × seeds, one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import DataDirOpt, ForceOpt, Overrides, VerboseOpt, app, data_dir, reports_errors, run_dir
from semid.core.config import parse_overrides
from semid.data.readers import FORMATS


@app.command("experiment")
@reports_errors
def experiment_cmd(
    recipe: Annotated[str, typer.Argument(help="a recipe file, or a name under configs/experiments/ (e.g. codebooks)")],
    overrides: Overrides = None,
    data_dir_: DataDirOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder of the tables (default: runs/experiments/<recipe>)")] = None,
    runs: Annotated[Path, typer.Option("--runs", help="root of the run folders (<dataset>[-<digest>] under it; shared with "
                                                    "`semid run` / `semid compare` at the default settings)")] = Path("runs"),
    fmt: Annotated[str | None, typer.Option("--format", help="|".join(FORMATS) + ": run the recipe on your own data")] = None,
    path: Annotated[Path | None, typer.Option("--path", help="folder (or file) of your own data in --format")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="also copy the tables under this folder (e.g. results)")] = None,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="record runs from a tree with uncommitted changes (marked dirty)")] = False,
    list_points: Annotated[bool, typer.Option("--list", help="print the grid points, their folders and what each cell would do now "
                                                                 "(done, reuses another recipe's folder, continues, trains); run nothing")] = False,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a recipe's grid (any run-config key, e.g. ids.levels × ids.codebook_size) with its models
    and seeds; shared stages computed once, finished cells reused, a killed grid continued
    (→ OUT/experiment.{md,csv,json,png}).

    Overrides name the section, as in `semid run`: `compare.seeds=[0]`, `compare.jobs=2`.
    """
    from semid.experiments import experiment
    from semid.pipeline import Context

    extra = parse_overrides(overrides or [])
    if fmt or path:
        if not (fmt and path):
            raise typer.BadParameter("--format and --path go together")
        extra.setdefault("prepare", {}).update({"format": fmt, "dataset": Path(path).resolve().name})
    if list_points:
        for line in experiment.plan(recipe, runs=runs, overrides=extra, own=path is not None, force=force):
            typer.echo(line)
        return
    folder = experiment.run(recipe, out, Context(data_dir=data_dir(data_dir_), path=path, force=force), runs=runs,
                            overrides=extra, lock=lambda d: run_dir(d, None))
    typer.echo((folder / "experiment.md").read_text())
    if record is not None:
        from semid.evaluate import results

        for written in results.record_experiment(folder, root=record, allow_dirty=allow_dirty):
            typer.echo(f"recorded: {written}")
