"""``semid train sid-gru`` / ``semid train sid-bert4rec``: the Semantic-ID-native baselines."""

from __future__ import annotations

import typer

from semid import config as cfgmod
from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, reports_errors, run_dir
from semid.cli.train import ResumeOpt, train_app


def _train(kind: str, overrides, dataset, out, config, resume: bool, force: bool) -> None:
    from semid.sidrec import stage

    cfg = cfgmod.load(stage.MODELS[kind], config, overrides, section=kind)
    folder = stage.run(cfg, run_dir(out, dataset or "beauty"), force=force, resume=resume)
    typer.echo(str(folder))


@train_app.command("sid-gru")
@reports_errors
def sid_gru_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
                resume: ResumeOpt = False, force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """SID-GRU: a GRU over Semantic-ID item vectors, per-level heads, trie beam search. Overrides: ids=<folder>, d_model=…, lr=…"""
    _train("sid_gru", overrides, dataset, out, config, resume, force)


@train_app.command("sid-bert4rec")
@reports_errors
def sid_bert4rec_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None,
                     config: ConfigOpt = None, resume: ResumeOpt = False, force: ForceOpt = False,
                     verbose: VerboseOpt = False) -> None:
    """SID-BERT4Rec: a bidirectional transformer with a [MASK] slot, per-level heads. Overrides: mask_prob=…, layers=…"""
    _train("sid_bert4rec", overrides, dataset, out, config, resume, force)
