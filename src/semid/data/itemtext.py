"""Item text from a template over title, brand, categories, price and description.

Each template part holds one ``{field}``; a part whose field is empty is left out, so an item
without a brand gets no "Brand:" fragment. The text is cut to a budget of whitespace-separated
words (description last in the default template, so it is what gets cut). Sources that ship a
ready-made ``text`` (UniSRec, LRD) keep it when the template's fields are all empty.
"""

from __future__ import annotations

import string

import polars as pl

from semid.data.text import clean_html

_FORMATTER = string.Formatter()


def template_fields(template: list[str]) -> list[str]:
    return [name for part in template for _, name, _, _ in _FORMATTER.parse(part) if name]


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " > ".join(v for v in (clean_html(str(x)) for x in value) if v)
    return clean_html(str(value)) or ""


def build_text(row: dict, template: list[str], sep: str, max_words: int) -> str | None:
    parts = []
    for part in template:
        (name,) = [n for _, n, _, _ in _FORMATTER.parse(part) if n]
        value = _value(row.get(name))
        if value:
            parts.append(part.format(**{name: value}).strip())
    if not parts and row.get("text"):
        parts = [_value(row["text"])]
    text = sep.join(p.rstrip(".") if i < len(parts) - 1 else p for i, p in enumerate(parts))
    words = text.split()
    if not words:
        return None
    return " ".join(words[:max_words])


def has_any_text(items: pl.DataFrame, template: list[str]) -> pl.Expr:
    """Whether an item has anything for the template (or a ready-made text): a cheap check
    before filtering, so the text itself is only built for the items that survive it."""
    checks = []
    for name in {*template_fields(template), "text"} & set(items.columns):
        col = pl.col(name)
        if isinstance(items.schema[name], pl.List):
            checks.append(col.list.eval(pl.element().str.strip_chars().str.len_bytes() > 0).list.any().fill_null(False))
        else:
            checks.append(col.str.strip_chars().str.len_bytes().fill_null(0) > 0)
    return pl.any_horizontal(checks) if checks else pl.lit(False)


def add_text(items: pl.DataFrame, template: list[str], sep: str, max_words: int) -> pl.DataFrame:
    """Add (or replace) the ``text`` column; null where an item has no text at all."""
    unknown = set(template_fields(template)) - set(items.columns)
    if unknown:
        raise ValueError(f"text_template names unknown fields {sorted(unknown)}; known: {items.columns}")
    texts = [build_text(r, template, sep, max_words) for r in items.iter_rows(named=True)]
    return items.with_columns(pl.Series("text", texts, dtype=pl.String))


