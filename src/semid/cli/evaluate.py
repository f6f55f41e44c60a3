"""``semid evaluate`` (score a trained model on a split) and ``semid results`` (the tables)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, reports_errors, run_dir
from semid.core import config as cfgmod
from semid.core.artifacts import read_json
from semid.core.errors import DataError


@app.command("evaluate")
@reports_errors
def evaluate_cmd(
    overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
    record: Annotated[Path | None, typer.Option("--record", help="also write a results record under this folder (e.g. results)")] = None,
    hardware: Annotated[str | None, typer.Option("--hardware", help="hardware label of the record, e.g. '2-core CPU'")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="preset label of the record (default: the model's)")] = None,
    setting: Annotated[str | None, typer.Option("--setting", help="record name suffix: results/<dataset>/<model>-<setting>.json")] = None,
    wall_time: Annotated[float | None, typer.Option("--wall-time", help="pipeline wall time (s) to note in the record")] = None,
    force: ForceOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Rank the full catalogue for each user of a split; Recall/NDCG@5,10,20, MRR, coverage, CIs (→ metrics.json).

    Overrides: model=tiger split=test|val beam_size=20 constrained=false cold_start_eps=0.1 …
    """
    from semid.evaluate import results, stage
    from semid.evaluate.stage import EvaluateConfig

    cfg = cfgmod.load(EvaluateConfig, config, overrides, section="evaluate")
    path = stage.run(cfg, run_dir(out, dataset), force=force)
    _print(path)
    if record is not None:
        rec = results.record(path, root=record, preset=preset, hardware=hardware or "unspecified",
                             wall_time_s=wall_time, setting=setting,
                             command="semid " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        typer.echo(f"recorded: {rec}")


def _print(path: Path) -> None:
    m = read_json(path)
    t = Table(title=f"{m['model']} on {m['dataset']} {m['split']} ({m['users']:,} users): {path}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("95% CI", justify="right")
    for k, v in m["metrics"].items():
        ci = m["ci95"].get(k)
        t.add_row(k, f"{v:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
    Console().print(t)


@app.command("results")
@reports_errors
def results_cmd(
    root: Annotated[Path, typer.Option("--root", help="results folder")] = Path("results"),
    dataset: DatasetOpt = None,
    update_readme: Annotated[Path | None, typer.Option("--update-readme", help="README to rewrite between its results markers")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print the table of recorded results next to the papers' numbers (or rewrite the README's)."""
    from semid.evaluate import results

    if update_readme is not None:
        results.update_readme(update_readme, root)
        typer.echo(f"updated {update_readme}")
        return
    records = results.load_records(root)
    if not records:
        raise DataError(f"no results records under {root.resolve()} (results/<dataset>/*.json): run from the repository "
                        "root, pass --root, or record a run with `semid evaluate --record results`")
    typer.echo(results.table(records, results.load_reference(root), dataset))
