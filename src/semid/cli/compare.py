"""``semid compare``: every model of the comparison on one dataset, one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DataDirOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, data_dir, reports_errors, run_dir
from semid.core import config as cfgmod


@app.command("compare")
@reports_errors
def compare_cmd(
    overrides: Overrides = None,
    dataset: DatasetOpt = None,
    data_dir_: DataDirOpt = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
    record: Annotated[Path | None, typer.Option("--record", help="also write one results record per model under this folder (e.g. results)")] = None,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="record runs from a tree with uncommitted changes (marked dirty)")] = False,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train + evaluate pop, knn, SASRec (CE, BCE), GRU4Rec, BERT4Rec, TIGER (Semantic and random IDs),
    SID-GRU and SID-BERT4Rec on one run folder (→ RUN/compare/comparison.{md,csv,json}).

    Overrides name the section: `compare.models=\\[pop,sasrec-ce]`, `compare.threads=2`, `prepare.dataset=…`.
    """
    from semid.evaluate import results
    from semid.experiments import compare
    from semid.pipeline import Context, RunConfig, run_all

    fixed = {"prepare": {"dataset": dataset}} if dataset else {}
    cfg = cfgmod.load(RunConfig, config, overrides, **fixed)
    rdir = run_dir(out, cfg.prepare.dataset)
    run_all(cfg, rdir, Context(data_dir=data_dir(data_dir_), force=force), until="ids")
    folder = compare.run(cfg.compare, rdir, cfg.ids, sections={"tiger": cfg.tiger.model_dump(exclude_unset=True)},
                         force=force)
    typer.echo((folder / "comparison.md").read_text())
    if record is not None:
        for path in results.record_comparison(folder, root=record, allow_dirty=allow_dirty):
            typer.echo(f"recorded: {path}")


@app.command("curves")
@reports_errors
def curves_cmd(
    models: Annotated[list[str], typer.Argument(help="model folders under RUN/models (e.g. sasrec-ce tiger), or paths of model folders")],
    out: OutOpt = None,
    dataset: DatasetOpt = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="legend label, one per model in order")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="also copy the plot and its JSON to DIR/<dataset>/ (e.g. results)")] = None,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="record models trained from uncommitted code, marked")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Time to quality: validation Recall@10 against training thread-minutes, from the models' logs
    (→ RUN/compare/time_to_quality.{png,json}; with model paths only, the first one's run folder)."""
    from semid.experiments import curves

    named = not all(map(curves.is_model_path, models))  # a name under RUN/models needs the run folder
    run = run_dir(out, dataset) if named or out is not None or dataset is not None else None
    png = curves.run(run, models, labels=label)
    typer.echo(f"time to quality: {png}")
    if record is not None:
        for path in curves.record(png, root=record, allow_dirty=allow_dirty):
            typer.echo(f"recorded: {path}")
