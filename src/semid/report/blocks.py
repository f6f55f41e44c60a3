"""What a report is made of: sections holding Markdown text and figures (PNG files on disk).

Both renderers (:mod:`semid.report.render`) take the same :class:`Report`: the Markdown one
copies each figure beside the ``.md`` file, the HTML one embeds it as a data URI. Markdown that a
stage already wrote (``semid analyze``'s ``failures.md``, say) is brought in by :func:`imported`,
which turns its image lines into :class:`Figure` parts so that both renderers treat them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semid.experiments.table import _fmt

IMAGE = re.compile(r"^\s*!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
HEADING = re.compile(r"^(#{1,6})\s")


@dataclass(frozen=True)
class Figure:
    """A PNG that exists, its caption, and a short name for the copy beside the Markdown file."""

    path: Path
    caption: str
    name: str


Part = str | Figure  # a Markdown block, or a figure


@dataclass
class Section:
    title: str
    level: int = 2
    parts: list[Part] = field(default_factory=list)

    def add(self, *parts: Part | None) -> Section:
        self.parts.extend(p for p in parts if p)
        return self


@dataclass
class Report:
    title: str
    intro: list[Part]
    sections: list[Section]


def figure(path: Path, caption: str, name: str) -> Figure | None:
    """A figure part when ``path`` is a PNG file, else None (its section then simply has no figure)."""
    path = Path(path)
    return Figure(path, caption, slug(name)) if path.is_file() and path.suffix.lower() == ".png" else None


def slug(text: str) -> str:
    """A file- and anchor-safe name: ``runs/beauty ids/rqvae-3x256`` → ``runs-beauty-ids-rqvae-3x256``."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.").lower() or "x"


def cell(value: Any, digits: int = 4) -> str:
    """A table cell: numbers as ``semid compare``'s tables print them; text with its pipes and
    line breaks neutralised."""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return _fmt(value, digits).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list[Any]], digits: int = 4) -> str:
    """A Markdown pipe table; columns whose first value (None aside) is a number are right-aligned."""
    if not rows:
        return ""
    first = [next((r[i] for r in rows if r[i] is not None), None) for i in range(len(rows[0]))]
    numeric = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in first]
    rule = "|" + "".join("---:|" if n else "---|" for n in numeric)
    body = ["| " + " | ".join(cell(v, digits) for v in r) + " |" for r in rows]
    return "\n".join(["| " + " | ".join(head) + " |", rule, *body])


def code(text: str) -> str:
    """Inline code for a path or a command (a backtick inside it is replaced, not escaped)."""
    return "`" + str(text).replace("`", "'") + "`"


def imported(text: str, folder: Path, *, name: str, demote: int = 2, drop_title: bool = True) -> list[Part]:
    """Markdown a stage wrote into ``folder``: headings moved ``demote`` levels down (its title
    dropped), image lines turned into figures of the files beside it (a missing one is said)."""
    parts: list[Part] = []
    block: list[str] = []
    lines = text.splitlines()
    if drop_title and lines and lines[0].startswith("# "):
        lines = lines[1:]
    for line in lines:
        image = IMAGE.match(line)
        if image:
            parts.append("\n".join(block))
            block = []
            alt, src = image.groups()
            fig = figure(folder / src, f"{alt} ({folder / src})", f"{name}-{Path(src).stem}")
            parts.append(fig or f"_(figure {code(src)} is not in {code(folder)})_")
            continue
        head = HEADING.match(line)
        if head:
            line = "#" * min(6, len(head.group(1)) + demote) + line[len(head.group(1)):]
        block.append(line)
    parts.append("\n".join(block))
    return [p for p in parts if not isinstance(p, str) or p.strip()]


__all__ = ["Figure", "Part", "Section", "Report", "figure", "slug", "cell", "table", "code", "imported"]
