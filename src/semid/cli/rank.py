"""``semid rank train|study|rerank``: Semantic IDs inside a ranking model (Singh et al., 2024)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DataDirOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, data_dir, reports_errors, run_dir
from semid.core import config as cfgmod

rank_app = typer.Typer(help="SID ranking study: item representations inside a DIN-style ranker.", no_args_is_help=True)
app.add_typer(rank_app, name="rank")

ResultsOpt = Annotated[Path | None, typer.Option(
    "--results", help="also write into <RESULTS>/<dataset>/rank_study.json (e.g. --results results)")]
RerankResultsOpt = Annotated[Path | None, typer.Option(
    "--results", help="also write into <RESULTS>/<dataset>/rerank.json (e.g. --results results)")]


@rank_app.command("train")
@reports_errors
def train_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
              force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """Train one ranker (→ RUN/models/rank-<representation>-<T>). Overrides: representation=spm table_size=4096 …"""
    from semid.rank import stage
    from semid.rank.config import RankConfig

    cfg = cfgmod.load(RankConfig, config, overrides, section="rank")
    typer.echo(str(stage.run(cfg, run_dir(out, dataset), force=force)))


@rank_app.command("study")
@reports_errors
def study_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, data_dir_: DataDirOpt = None,
              out: OutOpt = None, config: ConfigOpt = None, results: ResultsOpt = None, force: ForceOpt = False,
              allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="write --results from a tree with uncommitted changes")] = False,
              verbose: VerboseOpt = False) -> None:
    """The whole grid: representations × table sizes × history on/off × seeds (→ RUN/study/results.{md,csv,json}
    + plots). Overrides: seeds=[0,1] table_sizes=[1024,4096] rank.threads=1 …"""
    from semid.rank import study
    from semid.rank.config import StudyConfig

    cfg = cfgmod.load(StudyConfig, config, overrides, section="study")
    if dataset is not None and cfg.prepare is not None:
        cfg.prepare = cfg.prepare.model_copy(update={"dataset": dataset})
    name = dataset or (cfg.prepare.dataset if cfg.prepare is not None else None)
    command = "semid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    folder = study.run(cfg, run_dir(out, name), data_dir_=data_dir(data_dir_), force=force, command=command,
                       results_root=results, allow_dirty=allow_dirty)
    typer.echo((folder / "results.md").read_text())


@rank_app.command("rerank")
@reports_errors
def rerank_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
               results: RerankResultsOpt = None, verbose: VerboseOpt = False) -> None:
    """TIGER's top 50 re-ranked by a trained ranker; full-catalogue Recall/NDCG next to TIGER alone.
    Overrides: ranker=rank-unigram-4096 tiger=tiger top_k=50 max_users=2000 …"""
    from semid.rank import rerank
    from semid.rank.config import RerankConfig

    cfg = cfgmod.load(RerankConfig, config, overrides, section="rerank")
    command = "semid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    typer.echo(str(rerank.run(cfg, run_dir(out, dataset), results_root=results, command=command)))
