"""``semid compare``: every model of the comparison on one dataset, one table."""

from __future__ import annotations

import shlex
import sys
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
    hardware: Annotated[str | None, typer.Option("--hardware", help="hardware label of the records, e.g. '2-core CPU'")] = None,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train + evaluate pop, knn, SASRec (CE, BCE), GRU4Rec, BERT4Rec, TIGER (Semantic and random IDs),
    SID-GRU and SID-BERT4Rec on one run folder (→ RUN/compare/comparison.{md,csv,json}).

    Overrides name the section: `compare.models=\\[pop,sasrec-ce]`, `compare.threads=2`, `prepare.dataset=…`.
    """
    from semid.core import artifacts
    from semid.evaluate import results
    from semid.experiments import compare
    from semid.pipeline import Context, RunConfig, run_all

    fixed = {"prepare": {"dataset": dataset}} if dataset else {}
    cfg = cfgmod.load(RunConfig, config, overrides, **fixed)
    rdir = run_dir(out, cfg.prepare.dataset)
    run_all(cfg, rdir, Context(data_dir=data_dir(data_dir_), force=force), until="ids")
    folder = compare.run(cfg.compare, rdir, cfg.ids, sections={"tiger": cfg.tiger.model_dump(exclude_unset=True)},
                         force=force)
    if record is not None:
        command = "semid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        rows = artifacts.read_json(folder / "comparison.json")["rows"]
        for row in rows:
            rec = results.record(Path(row["metrics_file"]), root=record, hardware=hardware or "unspecified",
                                 wall_time_s=row["train_wall_s"], command=command)
            typer.echo(f"recorded: {rec}")
        dest = record / str(rows[0]["dataset"] if rows else rdir.name)
        for name in ("comparison.md", "comparison.csv", "comparison.json", "recall10.png"):
            if (folder / name).is_file():
                artifacts.write_bytes(dest / name, (folder / name).read_bytes())
        typer.echo(f"comparison table: {dest / 'comparison.md'}")
    typer.echo((folder / "comparison.md").read_text())
