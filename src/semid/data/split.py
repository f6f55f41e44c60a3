"""Splits into train / validation / test examples, one row per example.

Every split table has ``user_id``, ``history`` (item_ids before the target, oldest first),
``target``, ``timestamp`` (the target's, null without timestamps) and ``cold`` (the target never
occurs in training). A train row holds a user's whole training sequence as ``history + [target]``;
models expand it into sliding windows themselves.

- ``loo``: per-user leave-one-out, the TIGER protocol: last event → test, second to last →
  validation, the rest → train.
- ``temporal``: a global cut in time: events at or after the test cut → test, between the
  validation cut and the test cut → validation, each such event one row whose history is all of
  the user's earlier events. Items first seen after a cut are cold-start items.
- ``holdout_items_share`` (with either): a random share of items is removed from training, so
  they appear only as validation/test targets (and in histories): a cold-start set for data
  without timestamps, as in TIGER §4.4.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from semid.core.errors import DataError

SPLIT_SCHEMA = {"user_id": pl.Int32, "history": pl.List(pl.Int32), "target": pl.Int32,
                "timestamp": pl.Int64, "cold": pl.Boolean}


def _rows(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c).cast(t) for c, t in SPLIT_SCHEMA.items()])


def _sequences(inter: pl.DataFrame) -> pl.DataFrame:
    return inter.group_by("user_id", maintain_order=True).agg(pl.col("item_id"), pl.col("timestamp"))


def leave_one_out(inter: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    train, train_short, val, test, info = leave_one_out_parts(inter)
    return pl.concat([train, train_short]), val, test, info


def leave_one_out_parts(inter: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """:func:`leave_one_out` with the training rows of users too short to evaluate apart:
    ``(train, train_short, val, test, info)``; the full training table is ``train`` then
    ``train_short``. The streaming prepare runs this on one range of users at a time."""
    seqs = _sequences(inter).with_columns(pl.col("item_id").list.len().alias("n"))
    short = seqs.filter(pl.col("n") < 3)
    seqs = seqs.filter(pl.col("n") >= 3)

    def pick(offset: int) -> pl.DataFrame:  # offset from the end: 1 = last event
        return seqs.select(
            "user_id",
            pl.col("item_id").list.head(pl.col("n") - offset).alias("history"),
            pl.col("item_id").list.get(pl.col("n") - offset).alias("target"),
            pl.col("timestamp").list.get(pl.col("n") - offset).alias("timestamp"),
            pl.lit(False).alias("cold"),
        )

    # too short to evaluate: their events still train the model
    train_short = short.filter(pl.col("n") >= 2).select(
        "user_id", pl.col("item_id").list.head(pl.col("n") - 1).alias("history"),
        pl.col("item_id").list.last().alias("target"), pl.col("timestamp").list.last().alias("timestamp"),
        pl.lit(False).alias("cold"))
    info = {"protocol": "leave-one-out per user (last → test, second to last → validation)",
            "users_too_short_for_evaluation": short.height}
    return _rows(pick(3)), _rows(train_short), _rows(pick(2)), _rows(pick(1)), info


def temporal(inter: pl.DataFrame, test_share: float, val_share: float,
             cut: int | None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    ts = inter["timestamp"]
    check_timestamps(inter.height, ts.null_count())
    t_test = int(cut) if cut is not None else int(ts.quantile(1 - test_share, "lower"))
    t_val = int(ts.filter(ts < t_test).quantile(val_quantile(test_share, val_share), "lower")) if val_share > 0 else t_test
    train, val, test = temporal_rows(inter, t_test, t_val)
    return train, val, test, temporal_info(t_test, t_val)


def check_timestamps(rows: int, nulls: int) -> None:
    if nulls == rows:
        raise DataError("split=temporal needs timestamps, and this dataset has none; "
                        "use split=loo with holdout_items_share=0.05 for a cold-start set")
    if nulls:
        raise DataError(f"split=temporal needs a timestamp on every event; {nulls} events have none")


def val_quantile(test_share: float, val_share: float) -> float:
    """The validation cut's quantile among the events before the test cut."""
    return 1 - val_share / (1 - test_share)


def temporal_info(t_test: int, t_val: int) -> dict[str, Any]:
    return {"protocol": "global temporal split", "test_cut": t_test, "val_cut": t_val,
            "test_cut_utc": _utc(t_test), "val_cut_utc": _utc(t_val)}


def temporal_rows(inter: pl.DataFrame, t_test: int, t_val: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Train, validation and test rows for given cuts; per user, so it runs on any set of whole users."""
    inter = inter.with_columns(pl.when(pl.col("timestamp") >= t_test).then(pl.lit("test"))
                               .when(pl.col("timestamp") >= t_val).then(pl.lit("val"))
                               .otherwise(pl.lit("train")).alias("_split"),
                               pl.int_range(pl.len()).over("user_id").alias("_pos"))
    seqs = _sequences(inter).rename({"item_id": "_seq"}).select("user_id", "_seq")

    def events(name: str) -> pl.DataFrame:
        ev = inter.filter(pl.col("_split") == name).join(seqs, on="user_id", how="left", maintain_order="left")
        return ev.select("user_id", pl.col("_seq").list.head(pl.col("_pos")).alias("history"),
                         pl.col("item_id").alias("target"), "timestamp", pl.lit(False).alias("cold"))

    tr = inter.filter(pl.col("_split") == "train")
    train = _sequences(tr).select(
        "user_id", pl.col("item_id").list.head(pl.col("item_id").list.len() - 1).alias("history"),
        pl.col("item_id").list.last().alias("target"), pl.col("timestamp").list.last().alias("timestamp"),
        pl.lit(False).alias("cold"))
    return _rows(train), _rows(events("val")), _rows(events("test"))


def hold_out_items(train: pl.DataFrame, n_items: int, share: float, seed: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Remove a random ``share`` of items from the training rows; returns the new train rows."""
    held = held_out_items(n_items, share, seed)
    train, removed = remove_items(train, held)
    return train, held_out_info(held, share, removed)


def held_out_items(n_items: int, share: float, seed: int) -> pl.Series:
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(n_items, size=int(round(share * n_items)), replace=False)).astype(np.int32)
    return pl.Series(held, dtype=pl.Int32)


def held_out_info(held: pl.Series, share: float, removed: int) -> dict[str, Any]:
    return {"held_out_items": int(len(held)), "held_out_share": share,
            "train_events_removed_for_held_out_items": removed}


def remove_items(train: pl.DataFrame, held: pl.Series) -> tuple[pl.DataFrame, int]:
    """Training rows without the ``held`` items, and how many events that removed (row by row,
    so it runs on any slice of the training rows)."""
    full = train.select("user_id", pl.concat_list("history", "target").alias("seq"), "timestamp", "target")
    before = int(full["seq"].list.len().sum())
    kept = full.with_columns(pl.col("seq").list.filter(~pl.element().is_in(held.implode())).alias("seq"))
    after = int(kept["seq"].list.len().sum())
    kept = kept.filter(pl.col("seq").list.len() >= 1)
    last = pl.col("seq").list.last()
    train = kept.select("user_id", pl.col("seq").list.head(pl.col("seq").list.len() - 1).alias("history"),
                        last.alias("target"),
                        # the old target's time is only right when the target was kept
                        pl.when(last == pl.col("target")).then(pl.col("timestamp")).alias("timestamp"),
                        pl.lit(False).alias("cold"))
    return _rows(train), before - after


def mark_cold(rows: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(~pl.col("target").is_in(train_items(train).implode()).alias("cold"))


def train_items(train: pl.DataFrame) -> pl.Series:
    """The distinct items that occur in training rows (histories or targets)."""
    return pl.concat([train["history"].explode(), train["target"]]).unique().drop_nulls()


def _utc(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
