"""Reader for timestamped interaction CSVs: ``user_id, item_id, time`` (comma- or tab-separated,
any further columns ignored), as in the LRD release of Amazon 2014 Office.

A folder may hold several interaction files; the usual ``train``, ``dev``/``valid``, ``test``
trio is read in that order, so events with equal timestamps keep their split order. Item
integers are named through ``*.item2index`` (``ASIN<TAB>int``) when present, and item text comes
from a ``*.text`` file (``ASIN<TAB>text`` after a header).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.lines import Issues
from semid.data.readers.unisrec import _index, _one, read_text_file
from semid.data.source import Source

ORDER = ("train", "dev", "valid", "val", "test")
USER_COLS = ("user_id", "user", "userid", "reviewerID")
ITEM_COLS = ("item_id", "item", "itemid", "asin", "parent_asin")
TIME_COLS = ("time", "timestamp", "unixReviewTime", "ts")


def _interaction_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [p for p in sorted(path.glob("*.csv")) + sorted(path.glob("*.tsv")) if not p.stem.startswith("item")]
    rank = {name: i for i, name in enumerate(ORDER)}
    files.sort(key=lambda p: (rank.get(p.stem.lower(), len(ORDER)), p.name))
    if not files:
        raise DataError("no interaction CSV found (expected columns user_id, item_id, time)", path=path)
    return files


def _pick(columns: list[str], names: tuple[str, ...], what: str, path: Path) -> str:
    for n in names:
        if n in columns:
            return n
    raise DataError(f"no {what} column: expected one of {', '.join(names)}, found {', '.join(columns)}", path=path, line=1)


def _read_one(path: Path) -> pl.DataFrame:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.readline()
    if not head.strip():
        raise DataError("file is empty", path=path)
    sep = "\t" if "\t" in head else ","
    try:
        df = pl.read_csv(path, separator=sep, infer_schema=False, quote_char='"')
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:  # OSError: a cut-short gzip file
        raise DataError(f"cannot parse as CSV ({type(exc).__name__}: {str(exc)[:160]})", path=path) from None
    user = _pick(df.columns, USER_COLS, "user", path)
    item = _pick(df.columns, ITEM_COLS, "item", path)
    time = _pick(df.columns, TIME_COLS, "time", path)
    return df.select(pl.col(user).alias("user"), pl.col(item).alias("item"), pl.col(time).alias("time"))


def read_csv(path: Path, cfg: PrepareConfig) -> Source:
    path = Path(path)
    issues = Issues(cfg.strict)
    files = _interaction_files(path)
    frames = [_read_one(f).with_columns(pl.lit(i).alias("_file")) for i, f in enumerate(files)]
    df = pl.concat(frames).with_row_index("_row")
    ts = df["time"].str.strip_chars().cast(pl.Float64, strict=False)
    ts = pl.select(pl.when(ts.is_finite() & (ts.abs() < 2.0**63)).then(ts)).to_series()  # NaN, ±inf, past int64: bad
    missing = df["user"].is_null() | df["item"].is_null()
    bad_mask = missing | ts.is_null()
    if bad_mask.any():
        row = df.filter(bad_mask).row(0, named=True)
        line = row["_row"] - int((df["_file"] < row["_file"]).sum()) + 2  # 1-based, after the header
        reason = "missing user or item" if row["user"] is None or row["item"] is None else f"time {row['time']!r} is not a number"
        if cfg.strict:
            raise DataError(f"{reason} (pass strict=false to skip and count such rows)", path=files[row["_file"]], line=line)
        for reason, n in (("missing user or item", int(missing.sum())),
                          ("time is not a number", int((ts.is_null() & ~missing).sum()))):
            if n:
                issues.counts[reason] += n
        df, ts = df.filter(~bad_mask), ts.filter(~bad_mask)
    folder = path if path.is_dir() else path.parent
    index_file = _one(folder, "*.item2index")
    names = _index(index_file)
    items = df["item"].str.strip_chars()
    if names:
        items = items.replace(names)
    frame = pl.DataFrame({"user": df["user"].str.strip_chars(), "item": items, "timestamp": ts.cast(pl.Int64)})
    text_file = _one(folder, "*.text")
    items_df = read_text_file(text_file, issues) if text_file else pl.DataFrame({"asin": []}, schema={"asin": pl.String})
    extra = [p for p in (index_file, text_file) if p]
    return Source(frame, items_df, files + extra, skipped=issues.counts,
                  notes={"interaction_files": [f.name for f in files]})
