"""``semid train <model>``: train a recommender on a run's data (TIGER here; other models add theirs)."""

from __future__ import annotations

from typing import Annotated

import typer

from semid import config as cfgmod
from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, reports_errors, run_dir

train_app = typer.Typer(help="Train a model on a prepared run (→ RUN/models/<name>).", no_args_is_help=True)
app.add_typer(train_app, name="train")

ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue from RUN/models/<name>/checkpoints/last.ckpt")]


@train_app.command("tiger")
@reports_errors
def tiger_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
              resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """TIGER generative retrieval. Overrides: preset=cpu|paper|tiny, ids=<folder>, lr=…, max_epochs=…"""
    from semid.tiger import stage
    from semid.tiger.config import TigerConfig

    cfg = cfgmod.load(TigerConfig, config, overrides, section="tiger")
    folder = stage.run(cfg, run_dir(out, dataset or "beauty"), force=force, resume=resume)
    typer.echo(str(folder))
