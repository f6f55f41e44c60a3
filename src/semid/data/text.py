"""Item text: cleaning raw metadata values (and, later, the item-text template).

Amazon metadata fields often hold HTML: entities (``&amp;``), markup around real text, or only
page debris (the 2018 magazine titles are ``<span class="a-size-medium a-color-secondary"``).
:func:`clean_html` keeps the readable text and turns pure debris into ``None``.
"""

from __future__ import annotations

import html
import re

# Whole script/style elements: their content is code, not text.
_SCRIPT = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
# A tag needs a name right after "<", so "5 < 6 > 4" is left alone.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>")
# Fragments cut out of a page: a tag that never closes (`<span class="..."`) at the end, or the
# tail of one (`... Magazines" />`) at the start.
_OPEN_TAIL = re.compile(r"</?[A-Za-z][^<>]*$")
_CLOSE_HEAD = re.compile(r'^[^<>]*"(\s*/>|>)')
# A CSS rule (`.a-box-inner{background-color:#fff}`): a selector, then a brace with a property.
_CSS = re.compile(r"^\s*(?:[#.@][\w-]|[a-z][\w-]*\s*(?=[.#{]))[^{}]*\{[^{}]*:")
_SPACE = re.compile(r"\s+")


def clean_html(s: str | None) -> str | None:
    """Return ``s`` as plain text: entities decoded, tags removed, whitespace collapsed.

    ``None``, empty strings and values that hold only markup, scripts or CSS become ``None``.
    """
    if s is None:
        return None
    s = str(s)
    # Repeated: some values hold escaped tags (`&lt;b&gt;`), a few are escaped twice.
    for _ in range(3):
        s = _SCRIPT.sub(" ", s)
        s = _COMMENT.sub(" ", s)
        s = _TAG.sub(" ", s)
        s = _OPEN_TAIL.sub(" ", s)
        s = _CLOSE_HEAD.sub(" ", s)
        if "&" not in s:
            break
        s = html.unescape(s)
    if _CSS.match(s):
        return None
    s = _SPACE.sub(" ", s).strip()
    return s or None
