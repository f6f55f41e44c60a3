"""A :class:`~semid.report.blocks.Report` written out, atomically: as Markdown with its figures
copied beside it (``OUT/NAME.md`` + ``OUT/img/NAME/*.png``), and as one self-contained HTML page
(``OUT/NAME.html``: CSS inline, figures as base64 data URIs, the Markdown rendered by markdown-it
with raw HTML and images from text disabled, every title escaped by Jinja2)."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import re
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup
from PIL import Image

from semid.core import artifacts
from semid.core.log import log
from semid.report import template
from semid.report.blocks import Figure, Part, Report, slug

IMG = "img"


def png(path: Path) -> bytes:
    """A figure's PNG as the report holds it: quantised to 256 colours (plots, t-SNE maps) and
    optimised, about 4× smaller, so a report of many figures stays small; the source file's
    bytes where that is not smaller, or where the file is not a readable PNG (said in the log; the
    report is still written). The same source gives the same bytes, made once for both formats."""
    st = Path(path).stat()
    return _png(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _png(path: str, _mtime_ns: int, _size: int) -> bytes:  # keyed by the file's state, so an edited file is read again
    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            small = im.convert("RGBA").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        log.warning("report: %s is not a readable PNG (%s); copied as it is", path, exc)
        return data
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


def _alt(text: str) -> str:
    return re.sub(r"[\[\]\n]", " ", text)


def markdown(report: Report, path: Path) -> Path:
    """``path`` (``NAME.md``) and its PNGs under ``img/NAME/``: identical figures are copied once;
    PNGs the previous version linked and this one does not are removed."""
    path = Path(path)
    folder = path.parent / IMG / path.stem
    before = linked(path)
    names: dict[str, str] = {}

    def part(p: Part) -> str:
        if isinstance(p, str):
            return p.strip("\n")
        data = png(p.path)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if digest not in names:
            name, i = f"{p.name}.png", 1
            while name in names.values():
                name, i = f"{p.name}-{i}.png", i + 1
            artifacts.write_bytes(folder / name, data)
            names[digest] = name
        return f"![{_alt(p.caption)}]({IMG}/{path.stem}/{names[digest]})\n\n_{p.caption}_"

    lines = [f"# {report.title}", *map(part, report.intro)]
    for s in report.sections:
        lines += ["#" * s.level + " " + s.title, *map(part, s.parts)]
    artifacts.write_text(path, "\n\n".join(lines) + "\n")
    for stale in before - {folder / n for n in names.values()}:
        stale.unlink(missing_ok=True)
    return path


def linked(md: Path) -> set[Path]:
    """The PNGs under ``img/<stem>/`` that the Markdown file ``md`` links (none when it does not exist)."""
    if not md.is_file():
        return set()
    prefix = f"{IMG}/{md.stem}/"
    return {md.parent / m for m in re.findall(r"\]\((" + re.escape(prefix) + r"[^)\s/]+\.png)\)", md.read_text())}


def html(report: Report, path: Path) -> Path:
    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    fig = env.from_string(template.FIGURE)

    def body(parts: list[Part]) -> Markup:
        out = []
        for p in parts:
            if isinstance(p, Figure):
                out.append(fig.render(data=base64.b64encode(png(p.path)).decode(), caption=p.caption, name=p.name))
            else:
                out.append(md.render(p))
        return Markup("\n".join(out))

    anchors: set[str] = set()
    sections = []
    for s in report.sections:
        anchor = slug(s.title)
        while anchor in anchors:
            anchor += "-x"
        anchors.add(anchor)
        sections.append({"title": Markup(md.renderInline(s.title)), "level": s.level, "anchor": anchor, "body": body(s.parts)})
    page = env.from_string(template.PAGE).render(title=report.title, css=Markup(template.CSS), intro=body(report.intro),
                                                 sections=sections)
    artifacts.write_text(path, page)
    return Path(path)


__all__ = ["markdown", "html", "linked"]
