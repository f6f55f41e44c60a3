"""``semid train sasrec|gru4rec|bert4rec|pop|knn``: the item-ID baselines (→ RUN/models/<name>)."""

from __future__ import annotations

from pathlib import Path

import typer

from semid import config as cfgmod
from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, reports_errors, run_dir
from semid.cli.train import ResumeOpt, train_app


def _train(kind: str, overrides: list[str] | None, dataset: str | None, out: Path | None, config: Path | None,
           resume: bool, force: bool) -> None:
    from semid.seqrec import stage

    cfg = cfgmod.load(stage.MODELS[kind], config, overrides, section=kind)
    folder = stage.run(cfg, run_dir(out, dataset or "beauty"), force=force, resume=resume)
    typer.echo(str(folder))


@train_app.command("sasrec")
@reports_errors
def sasrec_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
               resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """SASRec. Overrides: loss=ce|bce, d_model=…, layers=…, heads=…, dropout=…, lr=…, max_time_min=…, threads=…"""
    _train("sasrec", overrides, dataset, out, config, resume, force)


@train_app.command("gru4rec")
@reports_errors
def gru4rec_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
                resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """GRU4Rec with full-softmax CE. Overrides: hidden=…, layers=…, dropout=…, lr=…, max_time_min=…, threads=…"""
    _train("gru4rec", overrides, dataset, out, config, resume, force)


@train_app.command("bert4rec")
@reports_errors
def bert4rec_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
                 resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """BERT4Rec (cloze). Overrides: mask_prob=…, d_model=…, layers=…, heads=…, lr=…, max_time_min=…, threads=…"""
    _train("bert4rec", overrides, dataset, out, config, resume, force)


@train_app.command("pop")
@reports_errors
def pop_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
            force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """Most popular training items, the same list for every user."""
    _train("pop", overrides, dataset, out, config, False, force)


@train_app.command("knn")
@reports_errors
def knn_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
            force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """Semantic KNN over item text embeddings. Overrides: last_n=…, decay=…, exclude_history=true|false"""
    _train("knn", overrides, dataset, out, config, False, force)
