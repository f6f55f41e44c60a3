"""``semid evaluate`` (score a trained model on a split) and ``semid results`` (the tables)."""

from __future__ import annotations

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
    setting: Annotated[str | None, typer.Option("--setting", help="record name suffix: results/<dataset>/<model>-<setting>.json")] = None,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="record a run from a tree with uncommitted changes (marked dirty)")] = False,
    force: ForceOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Rank the full catalogue for each user of a split; Recall/NDCG@5,10,20, MRR, coverage, CIs (→ metrics.json).

    Overrides: model=tiger split=test|val beam_size=20 constrained=false cold_start_eps=0.1
    cold_start_codes=2 (cold start: match an unseen item on a generated ID's first 2 codes) …
    """
    from semid.evaluate import results, stage
    from semid.evaluate.stage import EvaluateConfig

    cfg = cfgmod.load(EvaluateConfig, config, overrides, section="evaluate")
    path = stage.run(cfg, run_dir(out, dataset), force=force)
    _print(path)
    if record is not None:
        typer.echo(f"recorded: {results.record(path, root=record, setting=setting, allow_dirty=allow_dirty)}")


def _print(path: Path) -> None:
    m = read_json(path)
    t = Table(title=f"{m['model']} on {m['dataset']} {m['split']} ({m['users']:,} users): {path}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("95% CI", justify="right")
    t.add_column("history removed", justify="right")
    removed = m.get("metrics_history_removed") or {}
    for k, v in m["metrics"].items():
        ci = m["ci95"].get(k)
        t.add_row(k, f"{v:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "",
                  f"{removed[k]:.4f}" if k in removed and not k.startswith("invalid") else "")
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
