"""``semid report``: collect → sections → render.

    semid report runs/beauty runs/experiments/codebooks --out runs/report        # → report.html + report.md
    semid report runs/beauty results --out docs --name results --format md         # → docs/results.md + docs/img/results/

Each input gives its sections (:mod:`semid.report.runs` for run folders, :mod:`semid.report.studies`
for experiment and results folders); a section appears only when its files exist, and the top of
the report lists, per input, what is not there (and which command is still writing it). The
provenance section closes the report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from semid.core import artifacts
from semid.core.errors import ConfigError
from semid.core.log import log
from semid.report import provenance, render, runs, studies
from semid.report.blocks import Part, Report, Section, code
from semid.report.collect import EXPERIMENT, RUN, Context, Input, inputs

FORMATS = ("html", "md")
TITLE = "semid report"


def sections_of(inp: Input, ctx: Context) -> list[Section]:
    log.info("report: reading %s (%s)", inp.label, inp.kind)
    if inp.kind == RUN:
        return runs.sections(inp, ctx)
    if inp.kind == EXPERIMENT:
        return studies.experiment(inp, inp.path, ctx)
    return studies.results_sections(inp, ctx)


def intro(ins: list[Input], ctx: Context, command: str | None) -> list[Part]:
    git = artifacts.git_state()
    made = (f"Made by `semid report` on {artifacts.now()} (semid git {str(git['commit'] or '–')[:10]}"
            f"{', uncommitted changes' if git['dirty'] else ''}) from " + ", ".join(f"{code(i.label)} ({i.kind})" for i in ins)
            + ". Every number is read from the files the commands wrote; the last section names each file's command, "
            "commit, date and hardware.")
    parts: list[Part] = [made]
    if command:
        parts.insert(0, f"Regenerate with:\n\n```bash\n{command}\n```")
    notes = []
    for inp in ins:
        if inp in ctx.missing:
            notes.append(f"- {code(inp.label)}: {'; '.join(ctx.missing[inp])}"
                         + (f". {ctx.running[inp]}: the sections it writes appear once it finishes." if inp in ctx.running else "."))
    if notes:
        parts += ["**Not in this report**, because their files do not exist (yet):", "\n".join(notes)]
    return parts


def build(paths: Sequence[Path], out: Path, *, name: str = "report", title: str | None = None,
          formats: Sequence[str] = FORMATS, cases: int = 3, command: str | None = None,
          id_figures: Sequence[str] = ("*",)) -> list[Path]:
    """Write the report on ``paths`` into ``out`` (``NAME.html`` and/or ``NAME.md`` + ``img/NAME/``);
    returns the files written. ``id_figures``: name patterns of the ID folders whose figures are
    shown (every ID folder is in the tables)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"report format {bad or formats}: choose from {', '.join(FORMATS)}")
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"report name {name!r}: a plain file name without folders, e.g. results")
    ins = inputs([Path(p) for p in paths])
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="semid-report-") as scratch:
        ctx = Context(Path(scratch), cases=cases, id_figures=tuple(id_figures))
        sections = [s for inp in ins for s in sections_of(inp, ctx)]
        prov = provenance.section(ctx)
        report = Report(title or TITLE, intro(ins, ctx, command), sections + ([prov] if prov else []))
        written = []
        if "md" in formats:
            written.append(render.markdown(report, out / f"{name}.md"))
        if "html" in formats:
            written.append(render.html(report, out / f"{name}.html"))
    for path in written:
        log.info("report: wrote %s (%.0f kB)", path, path.stat().st_size / 1024)
    return written


__all__ = ["build", "FORMATS"]
