"""``semid report``: one HTML page (self-contained) and the same as Markdown with PNGs, made from
what runs, experiments and ``results/`` already hold.

``collect`` (what each path is, the JSON read) → ``runs`` / ``studies`` (sections, each only when
its files exist) + ``provenance`` → ``render`` (Markdown, HTML); ``build`` ties them together.
"""

from __future__ import annotations

from semid.report.build import FORMATS, build

__all__ = ["build", "FORMATS"]
