"""``semid ids train|assign|analyze|sweep``: Semantic IDs over the item embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, reports_errors, run_dir
from semid.core import config as cfgmod

ids_app = typer.Typer(help="Semantic IDs: train (RQ-VAE, RQ-KMeans, random), assign, analyze, sweep.",
                      no_args_is_help=True)
app.add_typer(ids_app, name="ids")


def _cfg(config: Path | None, overrides: list[str] | None):
    from semid.ids.config import IdsConfig

    return cfgmod.load(IdsConfig, config, overrides, section="ids")


@ids_app.command("train")
@reports_errors
def train_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
              force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """Learn Semantic IDs for every item (→ RUN/ids/<method>-<L>x<K>). Overrides: method=rqkmeans levels=4 …"""
    from semid.ids import train

    folder = train.run(_cfg(config, overrides), run_dir(out, dataset), force=force)
    typer.echo(str(folder / "semantic_ids.parquet"))


@ids_app.command("assign")
@reports_errors
def assign_cmd(
    overrides: Overrides = None,
    input_: Annotated[Path | None, typer.Option(
        "--input", "-i", help="new items: .npy embeddings, or .parquet/.csv/.jsonl/.txt with a text or title "
                              "column (default: re-assign the catalogue)")] = None,
    to: Annotated[Path | None, typer.Option(
        "--to", help="output parquet, CSV beside it (default: RUN/ids/<name>/assigned_ids.parquet)")] = None,
    dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None, verbose: VerboseOpt = False,
) -> None:
    """Map items to IDs with the frozen model; new items stay unique against the catalogue."""
    from semid.ids import assign

    typer.echo(str(assign.run(_cfg(config, overrides), run_dir(out, dataset), source=input_, output=to)))


@ids_app.command("analyze")
@reports_errors
def analyze_cmd(overrides: Overrides = None, dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None,
                force: ForceOpt = False, verbose: VerboseOpt = False) -> None:
    """Quality report of trained IDs (→ ids_report.json, report.md, PNG plots)."""
    from semid.ids import analyze

    folder = analyze.run(_cfg(config, overrides), run_dir(out, dataset), force=force)
    typer.echo(str(folder / "report.md"))


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise cfgmod.ConfigError(f"expected comma-separated integers, got {text!r}") from None


@ids_app.command("sweep")
@reports_errors
def sweep_cmd(
    overrides: Overrides = None,
    methods: Annotated[str, typer.Option("--methods", help="comma-separated: rqvae,rqkmeans,random")] = "rqkmeans,rqvae",
    levels: Annotated[str, typer.Option("--levels", help="comma-separated L values")] = "3,4,5",
    sizes: Annotated[str, typer.Option("--sizes", help="comma-separated K values")] = "256,512,1024",
    dataset: DatasetOpt = None, out: OutOpt = None, config: ConfigOpt = None, verbose: VerboseOpt = False,
) -> None:
    """Train + analyse every (method, L, K) and write one table (RUN/ids/sweep/sweep.md, .csv)."""
    from semid.ids import sweep

    base = _cfg(config, overrides)
    from semid.ids.methods import METHODS

    names = [m.strip() for m in methods.split(",") if m.strip()]
    for name in names:
        if name not in METHODS:
            raise cfgmod.ConfigError(f"--methods: unknown method {name!r} ({', '.join(METHODS)})")
    folder = sweep.run(base, run_dir(out, dataset), methods=names, levels=_ints(levels), sizes=_ints(sizes))
    typer.echo((folder / "sweep.md").read_text())
