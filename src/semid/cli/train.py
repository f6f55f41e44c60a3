"""``semid train <kind>``: one command per model of the registry (→ RUN/models/<name>)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, reports_errors, run_dir
from semid.core import config as cfgmod
from semid.models import registry

train_app = typer.Typer(help="Train a model on a prepared run (→ RUN/models/<name>).", no_args_is_help=True)
app.add_typer(train_app, name="train")

ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue from RUN/models/<name>/checkpoints/last.ckpt")]


def _command(spec: registry.ModelSpec) -> Callable[..., None]:
    def train_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
                  resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
        from semid.models import stage

        cfg = cfgmod.load(spec.config, config, overrides, section=spec.kind)
        typer.echo(str(stage.train(spec.kind, cfg, run_dir(out, dataset), force=force, resume=resume)))

    train_cmd.__doc__ = spec.help
    return reports_errors(train_cmd)


for _spec in registry.REGISTRY.values():
    train_app.command(_spec.kind)(_command(_spec))
