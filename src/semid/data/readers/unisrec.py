"""Reader for UniSRec / RecBole atomic files: ``<name>.text``, ``<name>.item2index``,
``<name>.user2index`` and either ``<name>.{train,valid,test}.inter`` (one row per example: user,
history, target) or a plain ``<name>.inter`` (one row per event, optionally with a timestamp).

From the split files each user's full sequence is the test row's history plus its target
(UniSRec caps histories at 50 items, so the longest sequences arrive truncated).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.lines import Issues, iter_lines
from semid.data.source import Source


def _one(path: Path, pattern: str) -> Path | None:
    hits = sorted(path.glob(pattern))
    if len(hits) > 1:
        raise DataError(f"several files match {pattern}: {', '.join(h.name for h in hits)}; pass --path to one dataset folder", path=path)
    return hits[0] if hits else None


def _index(path: Path | None) -> dict[str, str]:
    """``token<TAB>int`` → {int: token}."""
    if path is None:
        return {}
    out = {}
    for _, line in iter_lines(path):
        token, _, idx = line.partition("\t")
        out[idx.strip()] = token
    return out


def _unix_seconds(text: str) -> int:
    """A timestamp field as whole seconds; ValueError for text, NaN, infinity or a value past int64."""
    value = int(float(text))
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _header(fields: str) -> list[str]:
    return [f.split(":")[0] for f in fields.split("\t")]


def read_unisrec(path: Path, cfg: PrepareConfig) -> Source:
    path = Path(path)
    issues = Issues(cfg.strict)
    item_file, user_file = _one(path, "*.item2index"), _one(path, "*.user2index")
    item_names, user_names = _index(item_file), _index(user_file)
    test = _one(path, "*.test.inter")
    plain = None if test is not None else _one(path, "*.inter")
    if test is None and plain is None:
        raise DataError("UniSRec/RecBole format needs <name>.test.inter or <name>.inter", path=path)
    users, items, times = [], [], []
    inter = test or plain
    header: list[str] | None = None
    for n, line in iter_lines(inter):
        fields = line.split("\t")
        if header is None:
            header = _header(line)
            need = {"user_id", "item_id_list", "item_id"} if test else {"user_id", "item_id"}
            if not need <= set(header):
                raise DataError(f"header must name {sorted(need)}, got {header}", path=inter, line=n)
            col = {name: i for i, name in enumerate(header)}
            continue
        if len(fields) != len(header):
            issues.bad(inter, n, f"expected {len(header)} tab-separated fields, got {len(fields)}")
            continue
        user = fields[col["user_id"]]
        if test:
            seq = fields[col["item_id_list"]].split() + [fields[col["item_id"]]]
            ts: list[int | None] = [None] * len(seq)
        else:
            seq = [fields[col["item_id"]]]
            try:
                ts = [_unix_seconds(fields[col["timestamp"]])] if "timestamp" in col else [None]
            except (ValueError, OverflowError):
                issues.bad(inter, n, "timestamp is not a whole number of seconds")
                continue
        users += [user_names.get(user, user)] * len(seq)
        items += [item_names.get(i, i) for i in seq]
        times += ts
    frame = pl.DataFrame({"user": users, "item": items, "timestamp": times},
                         schema={"user": pl.String, "item": pl.String, "timestamp": pl.Int64})
    files = [p for p in (inter, item_file, user_file) if p]
    text_file = _one(path, "*.text")
    items_df = read_text_file(text_file, issues) if text_file else pl.DataFrame({"asin": []}, schema={"asin": pl.String})
    if text_file:
        files.append(text_file)
    return Source(frame, items_df, files, skipped=issues.counts, notes={"text_file": str(text_file) if text_file else None})


def read_text_file(path: Path, issues: Issues) -> pl.DataFrame:
    """``ASIN<TAB>text`` lines after a header → a frame with ``asin`` and ready-made ``text``."""
    asins, texts = [], []
    for n, line in iter_lines(path, skip_header=True):
        asin, sep, text = line.partition("\t")
        if not sep:
            issues.bad(path, n, "expected ASIN<TAB>text")
            continue
        asins.append(asin.strip())
        texts.append(text.strip() or None)
    return pl.DataFrame({"asin": asins, "text": texts}, schema={"asin": pl.String, "text": pl.String})
