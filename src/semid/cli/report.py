"""``semid report``: an HTML page and a Markdown file of run, experiment and results folders."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import VerboseOpt, app, reports_errors


@app.command("report")
@reports_errors
def report_cmd(
    paths: Annotated[list[Path], typer.Argument(help="run folders (runs/beauty), experiment folders (runs/experiments/<recipe>) "
                                                     "and/or a results folder (results)", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder of the report")] = Path("runs/report"),
    name: Annotated[str, typer.Option("--name", help="file name: NAME.html, NAME.md and img/NAME/*.png")] = "report",
    title: Annotated[str | None, typer.Option("--title", help="the report's title")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, md, or both: html,md")] = "html,md",
    cases: Annotated[int, typer.Option("--cases", help="case studies shown per `semid analyze` folder", min=0)] = 3,
    id_figures: Annotated[str, typer.Option("--id-figures", help="comma-separated name patterns of the ID folders whose "
                                                                 "figures are shown, e.g. '*-3x256' (all are in the tables)")] = "*",
    verbose: VerboseOpt = False,
) -> None:
    """One self-contained HTML page (CSS inline, figures embedded, no network) and the same as Markdown
    with PNGs beside it: data statistics, Semantic-ID quality, the comparison next to the papers'
    numbers, evaluated models, training curves, the ranking study, the qualitative analysis,
    experiments, and the provenance of every number. Sections whose files do not exist are listed
    at the top instead (→ OUT/NAME.html, OUT/NAME.md, OUT/img/NAME/*.png).
    """
    from semid.report import build

    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    # the command that makes this report again, as given (however this process was started)
    again = ["semid", "report", *map(str, paths), "--out", str(out), "--name", name, *(["--title", title] if title else []),
             *(["--format", fmt] if fmt != "html,md" else []), *(["--cases", str(cases)] if cases != 3 else []),
             *(["--id-figures", id_figures] if id_figures != "*" else [])]
    patterns = [p.strip() for p in id_figures.split(",") if p.strip()]
    for path in build(paths, out, name=name, title=title, formats=formats, cases=cases, command=shlex.join(again),
                      id_figures=patterns):
        typer.echo(f"wrote {path}")
