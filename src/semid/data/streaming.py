"""The ``prepare`` stage without holding the interaction table, for dumps of hundreds of
millions of reviews (``engine=streaming``; the default for raw Amazon files over 256 MiB).

Same outputs, row for row, and the same ``stats.json`` as :func:`semid.data.prepare.build`;
only the way there differs. Memory holds one batch or one range of users' events at a time,
plus arrays and tables with one entry per distinct item or user (codes, counts, flags), never
the events themselves:

1. events (``user, item, timestamp, rating`` in file order) are Parquet files on disk, written
   by a streaming reader or, for small in-memory sources, from the reader's table;
2. they are split by a hash of the user, in batches; each part, holding whole users, gives its
   users a code (the file row of their first event, so codes keep the order of first
   appearance that the outputs use) and its items codes (one table over all parts); the coded
   events are split again into ranges of users of about :data:`BUCKET_ROWS` events;
3. each range is put in time order and deduplicated on its own (both act within a user);
4. the k-core iterates on counts, range by range: users' counts per range, items' counts in
   an array over the item codes, until nothing changes;
5. the ranges are read once more in order: final ids, positions and the splits, appended as
   Parquet parts; validation and test rows learn ``cold`` once the training items are known;
   the item text is built in parts of :data:`ITEM_ROWS` items; the parts become the output
   files one part at a time (Parquet and CSV, written atomically: :mod:`semid.data.parts`).

Polars' own streaming group-by, unique and partitioned sink on string columns hold memory in
proportion to the rows, not to the groups, on polars 2.1; that is why steps 2 and 5 split and
count by hand.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from semid.core.errors import DataError
from semid.core.log import log
from semid.data import filtering, split, summary
from semid.data.config import PrepareConfig
from semid.data.itemtext import add_text, has_any_text
from semid.data.parts import Parts
from semid.data.source import ITEM_SCHEMA, SCRATCH, Source, StreamSource, batches, conform_items

BUCKET_ROWS = 1_000_000  # events of one range of users, sorted and split in memory
ITEM_ROWS = 25_000  # items whose text is built, and written, at once (a few hundred bytes each)
META_ROWS = 1 << 16  # metadata rows read at once (long descriptions: a few hundred bytes each)
STREAMING = "streaming"
_BINS = 1 << 16  # histogram bins of the exact quantile of timestamps


def from_source(source: Source, workdir: Path) -> StreamSource:
    """A reader's in-memory table as a :class:`StreamSource` (the same pipeline for every format)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path, items = workdir / "events-table.parquet", workdir / "items-table.parquet"
    source.interactions.write_parquet(path, **SCRATCH)
    source.interactions = None
    source.items.unique(subset=["asin"], keep="first", maintain_order=True).write_parquet(items, **SCRATCH)
    return StreamSource([path], [items], source.files, skipped=source.skipped, notes=source.notes)


def build(source: StreamSource, cfg: PrepareConfig, out: Path, k_user: int, k_item: int, dedup: bool,
          workdir: Path) -> tuple[dict[str, Any], dict[str, Parts]]:
    """Prepare ``source`` into ``out``; returns the stats of :func:`semid.data.prepare.build`."""
    dropped: Counter[str] = Counter()
    events = pl.scan_parquet(source.events, row_index_name="_order")
    has_rating = "rating" in events.collect_schema().names()
    keep = filtering.has_user_and_item()
    rating_keep = filtering.rating_kept(cfg.min_rating) if cfg.min_rating is not None and has_rating else pl.lit(True)
    raw_events, valid, rated = events.select(pl.len().alias("raw"), keep.sum().alias("valid"),
                                               (keep & rating_keep).sum().alias("rated")).collect(
        engine=STREAMING).row(0)
    if raw_events == 0:
        raise DataError("the source holds no interactions", path=source.files[0] if source.files else None)
    dropped["missing user or item"] += raw_events - valid
    if cfg.min_rating is not None and has_rating:
        dropped[f"rating below {cfg.min_rating}"] += valid - rated
    log.info("prepare: %s events read; coding users and items", f"{raw_events:,}")
    buckets, n_parts, n_codes = _code(source.events, keep & rating_keep, rated, workdir)
    log.info("prepare: ordering %d range(s) of users by time", len(buckets))
    n_dups = 0
    for b in buckets:
        df = pl.read_parquet(_files(workdir / "coded" / f"{b:06d}")).sort(
            ["u", "timestamp", "_order"], nulls_last=True, maintain_order=True)
        if dedup:  # the first of each (user, item), as filtering.dedup; one packed key costs less than unique()
            kept = df.filter((pl.col("u").cast(pl.UInt64) * (1 << 32) + pl.col("i").cast(pl.UInt64)).is_first_distinct())
            n_dups += df.height - kept.height
            df = kept
        df.select("u", "i", "timestamp").write_parquet(workdir / f"sorted-{b:06d}.parquet", **SCRATCH)
    shutil.rmtree(workdir / "coded")
    if dedup:
        dropped["repeated (user, item) event"] += n_dups
    log.info("prepare: events in time order%s", f", {n_dups:,} repeated ones dropped" if dedup else "")
    sorted_files = [workdir / f"sorted-{b:06d}.parquet" for b in buckets]

    _split_meta(source, cfg, n_parts, workdir)
    alive_i, text_stats = _missing_text(sorted_files, n_codes, n_parts, cfg, workdir, dropped)
    core_files, n_events = _k_core(sorted_files, alive_i, k_user, k_item, workdir, dropped)
    del alive_i
    if n_events == 0:
        raise DataError(f"no interactions left after filtering ({dict(dropped)}); lower k_core or check the data")
    parts = _final(core_files, n_codes, cfg, workdir)
    item_id = parts.pop("item_id")  # over the item codes; -1: not in the outputs
    n_items = int((item_id >= 0).sum())
    items_out = Parts(_items_out(item_id, n_items, n_parts, cfg, workdir))
    del item_id
    tables = {"items": items_out, **parts["tables"]}
    stats = _stats(source, raw_events, n_events, n_items, tables, dropped, text_stats,
                   parts["split_info"], parts["lengths"], parts["time"])
    stats["k_core"] = {"users": k_user, "items": k_item}
    stats["dedup"] = dedup
    return stats, tables


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet"))


def _code(events: list[Path], keep: pl.Expr, n_events: int, workdir: Path) -> tuple[list[int], int, int]:
    """Integer codes for users and items, and the coded events split into ranges of users of
    about BUCKET_ROWS events (``coded/<range>/``); returns the range numbers, the number of
    parts the items were coded in (``item-names/<part>.parquet``: i, asin) and of item codes.

    A user's code is the file row of its first event, so codes sort users in order of first
    appearance (the order of the outputs). They are found without a table of all user names:
    events are first split by a hash of the user, and each part, holding whole users, is coded
    on its own. The user-coded events are then split by a hash of the item, and each part,
    holding whole items, gives its items codes that follow those of the parts before (in order
    of first sight within the part). No step holds a table of all users or all items.
    """
    n_hash = max(1, math.ceil(n_events / BUCKET_ROWS))
    offset = 0

    def by_user(df: pl.DataFrame) -> pl.DataFrame:  # file row numbers, filters, then the part
        nonlocal offset
        df = df.with_row_index("_order", offset=offset)
        offset += df.height
        return df.filter(keep).with_columns((pl.col("user").hash(seed=0) % n_hash).alias(_KEY))

    split_files(events, by_user, workdir / "hashed")
    log.info("prepare: coding users in %d parts", n_hash)
    (workdir / "names-hash").mkdir()
    # events per bin of user codes, to cut the codes into ranges of about BUCKET_ROWS events
    per_bin = np.zeros(offset // _BIN + 1, dtype=np.int64)
    for h in range(n_hash):
        df = _take_part(workdir / "hashed" / f"{h:06d}")
        if df is None:
            continue
        firsts = df.group_by("user").agg(pl.col("_order").min().alias("u"), pl.len().alias("n"))
        firsts.select("u", "user").write_parquet(workdir / "names-hash" / f"{h:06d}.parquet", **SCRATCH)
        np.add.at(per_bin, firsts.get_column("u").to_numpy() // _BIN, firsts.get_column("n").to_numpy())
        coded = (df.join(firsts.select("user", "u"), on="user").select("u", "item", "timestamp", "_order")
                 .with_columns(item_part(pl.col("item"), n_hash)))
        _split_frame(coded, workdir / "by-item", h)
        del df, firsts, coded
    # a new range starts at the first bin where the events so far pass a multiple of BUCKET_ROWS
    used = np.flatnonzero(per_bin)  # so that every range holds events
    before = (np.cumsum(per_bin) - per_bin)[used]
    cuts = used[np.diff(before // BUCKET_ROWS, prepend=-1) > 0]
    starts = pl.Series("u", cuts * _BIN, dtype=pl.Int64)
    del per_bin, before, used

    def by_range(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns((starts.search_sorted(df.get_column("u").cast(pl.Int64), side="right") - 1).alias(_KEY))

    log.info("prepare: coding items in %d parts", n_hash)
    (workdir / "item-names").mkdir()
    n_items = 0
    for g in range(n_hash):
        df = _take_part(workdir / "by-item" / f"{g:06d}")
        if df is None:
            continue
        codes = (df.group_by("item").agg(pl.col("_order").min().alias("_first")).sort("_first")
                 .with_row_index("i", offset=n_items).select(pl.col("i").cast(pl.UInt32), "item"))
        n_items += codes.height
        codes.select("i", pl.col("item").alias("asin")).write_parquet(workdir / "item-names" / f"{g:06d}.parquet", **SCRATCH)
        _split_frame(by_range(df.join(codes, on="item").select("u", "i", "timestamp", "_order")), workdir / "coded", g)
        del df, codes
    log.info("prepare: %s items", f"{n_items:,}")
    split_files(_files(workdir / "names-hash"), by_range, workdir / "names")
    shutil.rmtree(workdir / "names-hash")
    log.info("prepare: events coded, in %d ranges of users", starts.len())
    return list(range(starts.len())), n_hash, n_items


def _take_part(path: Path) -> pl.DataFrame | None:
    """The rows of one part folder of :func:`split_files`, the folder removed; None if no row went there."""
    if not path.exists():
        return None
    df = pl.read_parquet(_files(path))
    shutil.rmtree(path)
    return df


def item_part(item: pl.Expr, n_parts: int) -> pl.Expr:
    """The part an item's rows go to, from its ASIN: the same for events and metadata."""
    return (item.cast(pl.String).hash(seed=1) % n_parts).alias(_KEY)


_KEY = "_part"
_BIN = 1024  # file rows per bin of user codes when the codes are cut into ranges


def split_files(files: list[Path], keyed: Callable[[pl.DataFrame], pl.DataFrame], folder: Path, rows: int = 1 << 19) -> None:
    """Split the rows of Parquet files into parts, ``folder/<part>/<batch>.parquet``, where
    ``keyed(batch)`` adds the part number as a ``_part`` column. Reading a part's files in name
    order gives its rows in their original order.

    Batch by batch (:func:`batches`), so memory holds one batch. (Polars' partitioned sink
    buffers every part at once, which grows with the number of parts.)
    """
    for j, df in enumerate(batches(files, rows)):
        _split_frame(keyed(df), folder, j)


def _split_frame(df: pl.DataFrame, folder: Path, j: int) -> None:
    """Write the rows of ``df`` with part number ``k`` (column ``_part``) to ``folder/<k>/<j>.parquet``."""
    for (k,), part in df.partition_by(_KEY, as_dict=True, include_key=False, maintain_order=True).items():
        (folder / f"{k:06d}").mkdir(parents=True, exist_ok=True)
        part.write_parquet(folder / f"{k:06d}" / f"{j:07d}.parquet", **SCRATCH)


def _split_meta(source: StreamSource, cfg: PrepareConfig, n_parts: int, workdir: Path) -> None:
    """The metadata, conformed, with a ``_has_text`` flag, split into the item parts of
    :func:`_code` (``meta/<part>/``)."""
    has_text = has_any_text(pl.DataFrame(schema=ITEM_SCHEMA), cfg.text_template).alias("_has_text")
    split_files(source.items, lambda df: conform_items(df).filter(pl.col("asin").is_not_null())
                .with_columns(has_text, item_part(pl.col("asin"), n_parts)), workdir / "meta", rows=META_ROWS)


def _meta_part(workdir: Path, g: int, columns: list[str] | None = None) -> pl.DataFrame:
    found = _files(workdir / "meta" / f"{g:06d}")
    if found:
        return pl.read_parquet(found, columns=columns)
    empty = conform_items(pl.DataFrame(schema=ITEM_SCHEMA)).with_columns(pl.lit(False).alias("_has_text"))
    return empty.select(columns) if columns else empty


def _names_part(workdir: Path, g: int) -> pl.DataFrame:
    path = workdir / "item-names" / f"{g:06d}.parquet"
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema={"i": pl.UInt32, "asin": pl.String})


def _missing_text(sorted_files: list[Path], n_codes: int, n_parts: int, cfg: PrepareConfig, workdir: Path,
                  dropped: Counter[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``missing_text`` policy (see :func:`semid.data.prepare._missing_text`), one item part
    at a time; returns which item codes are still in, as a mask."""
    no_text = np.zeros(n_codes, dtype=bool)
    n_missing, examples = 0, []
    for g in range(n_parts):
        with_text = _meta_part(workdir, g, ["asin", "_has_text"]).filter("_has_text")
        missing = _names_part(workdir, g).join(with_text, on="asin", how="anti")
        n_missing += missing.height
        no_text[missing.get_column("i").to_numpy()] = True
        examples = sorted(examples + missing.get_column("asin").sort().head(5).to_list())[:5]
    stats, drop = filtering.text_policy(n_missing, examples, cfg.missing_text)
    alive = ~no_text if drop else np.ones(n_codes, dtype=bool)
    del no_text
    if drop:
        dropped["item without text"] += sum(
            int((~alive[pl.read_parquet(f, columns=["i"]).get_column("i").to_numpy()]).sum()) for f in sorted_files)
    return alive, stats


def _k_core(sorted_files: list[Path], alive_i: np.ndarray, k_user: int, k_item: int, workdir: Path,
            dropped: Counter[str]) -> tuple[list[Path], int]:
    """The iterative k-core on counts; writes the events left per range (``core-<range>.parquet``:
    u, i, timestamp) and returns those files and the number of events.

    A round reads the ranges one at a time and counts the events whose user and item are both
    still in: users per range (a range holds whole users), items in an array over the item
    codes. Until nothing changes; the core is unique, so this keeps the same events as
    :func:`semid.data.filtering.k_core`. Memory: the item arrays and one range; the codes of
    each range's users still in are written next to it (``alive-<round % 2>-<range>.parquet``).
    """
    alive_u: list[Path | None] = [None] * len(sorted_files)
    start, rounds = None, 0
    while True:
        rounds += 1
        per_item = np.zeros(alive_i.shape[0], dtype=np.int64)
        per_user: list[Path] = []
        n, n_users, users_short = 0, 0, False
        for b, path in enumerate(sorted_files):
            df = _core_events(path, alive_i, alive_u[b], ["u", "i"])
            n += df.height
            per_item += np.bincount(df.get_column("i").to_numpy(), minlength=per_item.shape[0])
            counts = df.group_by("u").len()
            ok = counts.filter(pl.col("len") >= k_user).select("u")
            users_short |= ok.height < counts.height
            n_users += counts.height
            per_user.append(workdir / f"alive-{rounds % 2}-{b:06d}.parquet")
            ok.write_parquet(per_user[-1], **SCRATCH)
            del df, counts, ok
        start = n if start is None else start
        present = per_item > 0
        ok_items = per_item >= k_item
        del per_item
        log.info("prepare: k-core round %d: %s events, %s users, %s items", rounds, f"{n:,}",
                 f"{n_users:,}", f"{int(present.sum()):,}")
        if k_user <= 1 and k_item <= 1 or not (users_short or (ok_items != present).any()):
            break
        alive_u, alive_i = per_user, ok_items
    if k_user > 1 or k_item > 1:
        dropped[f"k-core (users < {k_user} or items < {k_item} events)"] += start - n
    core = []
    for b, path in enumerate(sorted_files):
        core.append(workdir / f"core-{b:06d}.parquet")
        _core_events(path, alive_i, alive_u[b], ["u", "i", "timestamp"]).write_parquet(core[-1], **SCRATCH)
    for f in workdir.glob("alive-*.parquet"):
        f.unlink()
    return core, n


def _core_events(path: Path, alive_i: np.ndarray, alive_u: Path | None, columns: list[str]) -> pl.DataFrame:
    df = pl.read_parquet(path, columns=columns)
    keep = pl.Series(alive_i[df.get_column("i").to_numpy()])
    if alive_u is not None:
        keep &= df.get_column("u").is_in(pl.read_parquet(alive_u).get_column("u").implode())
    return df.filter(keep)


def _final(core_files: list[Path], n_item_codes: int, cfg: PrepareConfig, workdir: Path) -> dict[str, Any]:
    """Final ids, interactions and splits, one range of users at a time, written as parts.

    User ids follow the codes (order of first appearance), range after range; item ids follow
    first use, kept in an array over the item codes."""
    parts = workdir / "parts"
    parts.mkdir()
    names = ("users", "interactions", "train", "train_short", "val", "test")
    written: dict[str, list[Path]] = {n: [] for n in names}
    item_id = np.full(n_item_codes, -1, dtype=np.int32)
    n_users = n_items = 0
    lengths, n_null, t_min, t_max = np.zeros(0, dtype=np.int64), 0, None, None
    split_info: dict[str, Any] = {}
    cuts = _temporal_cuts(core_files, cfg) if cfg.split == "temporal" else None
    for b, path in enumerate(core_files):
        df = pl.read_parquet(path)
        if df.height == 0:
            continue
        user_ids = (df.select(pl.col("u").unique().sort()).with_row_index("user_id", offset=n_users)
                    .select("u", pl.col("user_id").cast(pl.Int32)))
        n_users += user_ids.height
        first = df.get_column("i").unique(maintain_order=True).to_numpy()
        new = first[item_id[first] < 0]
        item_id[new] = np.arange(n_items, n_items + len(new))
        n_items += len(new)
        inter = (df.join(user_ids, on="u", how="left", maintain_order="left")
                 .with_columns(pl.Series("item_id", item_id[df.get_column("i").to_numpy()], dtype=pl.Int32),
                               pl.int_range(pl.len()).over("user_id").alias("position"))
                 .select("user_id", "item_id", "timestamp", pl.col("position").cast(pl.Int32)))
        del df
        lengths = _add(lengths, summary.length_histogram(inter.group_by("user_id").len().get_column("len")))
        ts = inter.get_column("timestamp")
        n_null += ts.null_count()
        if ts.null_count() < ts.len():
            t_min = ts.min() if t_min is None else min(t_min, ts.min())
            t_max = ts.max() if t_max is None else max(t_max, ts.max())
        if cuts is None:
            train, train_short, val, test, info = split.leave_one_out_parts(inter)
        else:
            train, val, test = split.temporal_rows(inter, *cuts)
            train_short, info = train.clear(), {}
        user_names = (pl.read_parquet(_files(workdir / "names" / f"{b:06d}"))
                      .join(user_ids, on="u", how="inner").sort("user_id")
                      .select("user_id", pl.col("user").cast(pl.String)))
        for name, table in zip(names, (user_names, inter, train, train_short, val, test)):
            written[name].append(parts / f"{name}-{b:06d}.parquet")
            table.write_parquet(written[name][-1], **SCRATCH)
        if not split_info:
            split_info = dict(info)
        elif "users_too_short_for_evaluation" in info:
            split_info["users_too_short_for_evaluation"] += info["users_too_short_for_evaluation"]
        log.info("prepare: range %d/%d of users done", b + 1, len(core_files))
    if cuts is not None:
        split_info = split.temporal_info(*cuts)
    held = split.held_out_items(n_items, cfg.holdout_items_share, cfg.seed) if cfg.holdout_items_share > 0 else None
    removed = 0
    seen = np.zeros(n_items, dtype=bool)  # items in training rows
    for path in written["train"] + written["train_short"]:
        rows = pl.read_parquet(path)
        if held is not None:
            rows, gone = split.remove_items(rows, held)
            removed += gone
            rows.write_parquet(path, **SCRATCH)
        seen[split.train_items(rows).to_numpy()] = True
    if held is not None:
        split_info |= split.held_out_info(held, cfg.holdout_items_share, removed)
    seen_ids = pl.Series(np.flatnonzero(seen), dtype=pl.Int32)

    def cold(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(~pl.col("target").is_in(seen_ids.implode()).alias("cold"))

    tables = {"users": Parts(written["users"]), "interactions": Parts(written["interactions"]),
              "train": Parts(written["train"] + written["train_short"]),
              "val": Parts(written["val"], cold), "test": Parts(written["test"], cold)}
    time = [int(t_min), int(t_max)] if t_min is not None else None
    return {"item_id": item_id, "tables": tables, "split_info": split_info, "lengths": lengths, "time": (time, n_null)}


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum of two histograms of different lengths."""
    out = np.zeros(max(len(a), len(b)), dtype=np.int64)
    out[:len(a)] += a
    out[:len(b)] += b
    return out


def _items_out(item_id: np.ndarray, n_items: int, n_parts: int, cfg: PrepareConfig, workdir: Path) -> list[Path]:
    """The items table in parts of ITEM_ROWS items, in item_id order: each item part of
    :func:`_code` joined with its metadata and split by item_id, then each range of item_ids put
    in order and its text built."""
    joined = workdir / "items-joined"
    for g in range(n_parts):
        names = _names_part(workdir, g)
        ids = pl.Series("item_id", item_id[names.get_column("i").to_numpy()], dtype=pl.Int32)
        names = names.select(ids, "asin").filter(pl.col("item_id") >= 0)
        meta = _meta_part(workdir, g).drop("_has_text")
        rows = names.join(meta, on="asin", how="left").with_columns((pl.col("item_id") // ITEM_ROWS).alias(_KEY))
        _split_frame(rows, joined, g)
    shutil.rmtree(workdir / "meta", ignore_errors=True)
    files = []
    for part in range(math.ceil(n_items / ITEM_ROWS)):
        chunk = pl.read_parquet(_files(joined / f"{part:06d}")).sort("item_id")
        chunk = (add_text(chunk, cfg.text_template, cfg.text_sep, cfg.text_max_words)
                 .select("item_id", "asin", "title", "brand", "categories", "price", "description",
                         pl.coalesce("text", pl.lit("item ") + pl.col("asin")).alias("text")))
        files.append(workdir / f"items-{part:06d}.parquet")
        chunk.write_parquet(files[-1], **SCRATCH)
    shutil.rmtree(joined, ignore_errors=True)
    log.info("prepare: item text built for %s items", f"{n_items:,}")
    return files


def _temporal_cuts(core_files: list[Path], cfg: PrepareConfig) -> tuple[int, int]:
    """The cuts of :func:`semid.data.split.temporal`, exact, from two passes of counts."""
    ts = pl.scan_parquet(core_files).select("timestamp")
    rows, nulls = ts.select(pl.len().alias("n"), pl.col("timestamp").null_count().alias("nulls")).collect(
        engine=STREAMING).row(0)
    split.check_timestamps(rows, nulls)
    cut = cfg.temporal_cut
    t_test = int(cut) if cut is not None else _lower_quantile(ts, 1 - cfg.temporal_test_share)
    if cfg.temporal_val_share <= 0:
        return t_test, t_test
    before = ts.filter(pl.col("timestamp") < t_test)
    return t_test, _lower_quantile(before, split.val_quantile(cfg.temporal_test_share, cfg.temporal_val_share))


def _lower_quantile(ts: pl.LazyFrame, q: float) -> int:
    """``Series.quantile(q, "lower")`` of a column too long to hold: the value at sorted index
    floor(q (n - 1)), found with a histogram, then the values of the one bin that holds it."""
    n, lo, hi = ts.select(pl.len().alias("n"), pl.col("timestamp").min().alias("lo"),
                          pl.col("timestamp").max().alias("hi")).collect(
        engine=STREAMING).row(0)
    if n == 0:
        raise DataError("split=temporal: no events before the test cut to place the validation cut; "
                        "lower temporal_val_share or move the test cut")
    k = math.floor((n - 1) * q)
    width = max(1, (hi - lo) // _BINS + 1)
    counts = (ts.group_by(((pl.col("timestamp") - lo) // width).alias("bin")).len()
              .collect(engine=STREAMING).sort("bin").with_columns(pl.col("len").cum_sum().alias("upto")))
    row = counts.filter(pl.col("upto") > k).row(0, named=True)
    below = row["upto"] - row["len"]
    values = (ts.filter(((pl.col("timestamp") - lo) // width) == row["bin"]).collect(engine=STREAMING)
              .get_column("timestamp").sort())
    return int(values[k - below])


def _stats(source: StreamSource, raw_events: int, n_events: int, n_items: int, tables: dict[str, Parts],
           dropped: Counter[str], text_stats: dict[str, Any], split_info: dict[str, Any], lengths: np.ndarray,
           time: tuple[list[int] | None, int]) -> dict[str, Any]:
    """The stats of :func:`semid.data.prepare._stats`, summed over the parts of each table."""
    filled: Counter[str] = Counter()
    for df in tables["items"].frames(list(summary.TEXT_FIELDS)):
        filled.update(df.select(summary.filled(df.schema)).row(0, named=True))
    rows, cold, cold_items = {"train": tables["train"].height()}, {}, np.zeros(n_items, dtype=bool)
    for name in ("val", "test"):
        rows[name] = cold[name] = 0
        for df in tables[name].frames(["target"]):
            rows[name] += df.height
            cold[name] += int(df.get_column("cold").sum())
            if name == "test":
                cold_items[df.filter("cold").get_column("target").to_numpy()] = True
    time_range, n_null = time
    return summary.record(
        source, raw_events=raw_events, n_events=n_events, n_items=n_items, lengths=lengths,
        time_range=time_range, timestamps_missing=n_null, dropped=dropped, items_filled=dict(filled),
        text_stats=text_stats, split_info=split_info, rows=rows,
        cold={"val": cold["val"], "test": cold["test"], "test_items": int(cold_items.sum())})
