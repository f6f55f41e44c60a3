"""``semid analyze``: case studies, failure analysis and code meanings of a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ForceOpt, Overrides, VerboseOpt, app, reports_errors, run_dir


@app.command("analyze")
@reports_errors
def analyze_cmd(
    run: Annotated[Path, typer.Argument(help="a run folder with evaluated models (e.g. runs/beauty)", show_default=False)],
    overrides: Overrides = None,
    models: Annotated[str, typer.Option("--models", help="model folders, comma-separated; the first two are compared")] = "tiger,sasrec-ce",
    users: Annotated[int, typer.Option("--users", help="users in the case studies", min=1)] = 20,
    seed: Annotated[int, typer.Option("--seed", help="seed of the sample")] = 0,
    split: Annotated[str, typer.Option("--split", help="test or val")] = "test",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (default: RUN/analysis)")] = None,
    force: ForceOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Case studies of sampled users, where model A beats B and vice versa, metrics by target popularity,
    history length and cold/warm target, and what the codes mean (→ RUN/analysis/*.md, *.json, *.png).

    Overrides: protocol=kept|removed k=10 top_codes=20 map_items=2000 batch_users=2048 threads=1 …
    """
    from semid.analysis.stage import AnalyzeConfig
    from semid.analysis.stage import run as analyze
    from semid.core import config as cfgmod
    from semid.core.artifacts import read_json
    from semid.core.errors import DataError

    if not run.is_dir():
        raise DataError(f"{run} is not a run folder: pass the --out folder of `semid run` (e.g. runs/beauty)")
    cfg = cfgmod.load(AnalyzeConfig, None, overrides, users=users, seed=seed, split=split,
                      models=[m.strip() for m in models.split(",") if m.strip()])
    folder = analyze(cfg, run_dir(run, None) if out is None else run, out, force=force)  # the run folder's lock when writing into it
    fail = read_json(folder / "failures.json")
    o = fail.get("outcomes")
    if o:
        typer.echo(f"{o['a']} hit & {o['b']} miss: {o['a_hit_b_miss']:,}; {o['a']} miss & {o['b']} hit: {o['a_miss_b_hit']:,}; "
                   f"both: {o['both_hit']:,}; neither: {o['both_miss']:,} (of {fail['users']:,} users, K={fail['k']})")
    for name in ("cases.md", "failures.md", "codes.md"):
        typer.echo(f"wrote {folder / name}")
