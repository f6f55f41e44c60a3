"""Item text: cleaning raw metadata values (and, later, the item-text template).

Amazon metadata fields often hold HTML: entities (``&amp;``), markup around real text, or only
page debris (the 2018 magazine titles are ``<span class="a-size-medium a-color-secondary"``).
:func:`clean_html` keeps the readable text and turns pure debris into ``None``.
"""

from __future__ import annotations

import html
import re

# Markup, one alternative each (tried in this order at every position):
_MARKUP = re.compile(
    r"<(script|style)\b.*?(</\1\s*>|$)"  # whole script/style elements: their content is code
    r"|<!--.*?(-->|$)"                     # comments
    r"|</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>"  # tags; a name must follow "<", so "5 < 6 > 4" stays
    r"|</?[A-Za-z][^<>]*$"                 # a tag cut off at the end: `<span class="a-size-medium"`
    r'|^[^<>]*"(\s*/>|>)',                # the cut-off tail of one at the start: ` Magazines" />`
    re.IGNORECASE | re.DOTALL)
# What html.unescape would change ("F&W", "AT&T" and "Tom & Jerry" are not entities).
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]+);?")
# A CSS rule (`.a-box-inner{background-color:#fff}`): a selector, then a brace with a property.
_CSS = re.compile(r"^\s*(?:[#.@][\w-]|[a-z][\w-]*\s*(?=[.#{]))[^{}]*\{[^{}]*:")


def clean_html(s: str | None) -> str | None:
    """Return ``s`` as plain text: entities decoded, tags removed, whitespace collapsed.

    ``None``, empty strings and values that hold only markup, scripts or CSS become ``None``.
    """
    if s is None:
        return None
    s = str(s)
    if not s.isascii():  # ASCII (most values) encodes; only other text can hold a lone surrogate
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a broken JSON escape ("\ud8bf"): replace it
            s = s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if "<" not in s and ">" not in s and "&" not in s and "{" not in s:  # plain text: the common case
        return " ".join(s.split()) or None
    # Repeated: some values hold escaped tags (`&lt;b&gt;`), a few are escaped twice.
    for _ in range(3):
        if "<" in s or ">" in s:
            s = _MARKUP.sub(" ", s)
        if "&" not in s or not _ENTITY.search(s):
            break
        s = html.unescape(s)
    if "{" in s and _CSS.match(s):
        return None
    return " ".join(s.split()) or None
