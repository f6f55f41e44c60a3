"""Cleaning and filtering of the interaction table: order, deduplication, iterative k-core."""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from semid.core.errors import DataError
from semid.core.log import log


def encode(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Replace the ``user`` and ``item`` strings by UInt32 codes, one per distinct string.

    Sorting, deduplication and the k-core then run on integers (several times faster and a
    fraction of the memory on a large dump); the names stay in two small tables
    ``(code, user)`` and ``(code, asin)``.
    """
    df = df.with_columns(pl.col("user").cast(pl.Categorical).to_physical().alias("_u"),
                         pl.col("item").cast(pl.Categorical).to_physical().alias("_i"))
    users = df.select(pl.col("_u").alias("code"), "user").unique("code")
    items = df.select(pl.col("_i").alias("code"), pl.col("item").alias("asin")).unique("code")
    df = df.drop("user", "item").rename({"_u": "user", "_i": "item"})
    return df.select("user", "item", pl.exclude("user", "item")), users, items


def order_events(df: pl.DataFrame) -> pl.DataFrame:
    """Sort each user's events by time, stably: equal (or missing) timestamps keep file order.

    Users stay in the order they first appear in the file; ``_order`` records the file order.
    """
    df = df.with_row_index("_order")
    first = df.group_by("user", maintain_order=True).agg(pl.col("_order").min().alias("_first"))
    return (df.join(first, on="user", how="left")
              .sort(["_first", "timestamp", "_order"], nulls_last=True, maintain_order=True)
              .drop("_first"))


def has_user_and_item() -> pl.Expr:
    """An event names a user and an item (both engines drop the others)."""
    return (pl.col("user").is_not_null() & pl.col("item").is_not_null()
            & (pl.col("user").str.len_bytes() > 0) & (pl.col("item").str.len_bytes() > 0))


def rating_kept(min_rating: float) -> pl.Expr:
    """An event's rating is unknown or at least ``min_rating``."""
    return pl.col("rating").is_null() | (pl.col("rating") >= min_rating)


def drop_missing(df: pl.DataFrame, dropped: Counter[str]) -> pl.DataFrame:
    keep = df.filter(has_user_and_item())
    dropped["missing user or item"] += df.height - keep.height
    return keep


def filter_rating(df: pl.DataFrame, min_rating: float | None, dropped: Counter[str]) -> pl.DataFrame:
    if min_rating is None or "rating" not in df.columns:
        return df
    keep = df.filter(rating_kept(min_rating))
    dropped[f"rating below {min_rating}"] += df.height - keep.height
    return keep


def text_policy(n_missing: int, examples: list[str], policy: str) -> tuple[dict[str, Any], bool]:
    """The ``missing_text`` policy for the ``n_missing`` used items without text (``examples``:
    the first of their ASINs in sorted order): the stats, and whether to drop them; ``error``
    raises, naming a few."""
    stats = {"items_without_text": n_missing, "missing_text_policy": policy}
    if policy == "error" and n_missing:
        raise DataError(f"{n_missing} items have no text (e.g. {', '.join(examples[:5])}); "
                        "set missing_text=placeholder or missing_text=drop")
    return stats, policy == "drop" and n_missing > 0


def dedup(df: pl.DataFrame, dropped: Counter[str]) -> pl.DataFrame:
    """Keep the earliest of repeated (user, item) events (``df`` must already be in time order)."""
    keep = df.unique(subset=["user", "item"], keep="first", maintain_order=True)
    dropped["repeated (user, item) event"] += df.height - keep.height
    return keep


def k_core(df: pl.DataFrame, k_user: int, k_item: int, dropped: Counter[str]) -> pl.DataFrame:
    """Iteratively drop users with fewer than ``k_user`` and items with fewer than ``k_item``
    events until every remaining user and item has enough."""
    if k_user <= 1 and k_item <= 1:
        return df
    start, rounds = df.height, 0
    while True:
        rounds += 1
        ok_users = df.group_by("user").len().filter(pl.col("len") >= k_user).select("user")
        ok_items = df.group_by("item").len().filter(pl.col("len") >= k_item).select("item")
        if ok_users.height == df["user"].n_unique() and ok_items.height == df["item"].n_unique():
            break
        df = df.join(ok_users, on="user", how="semi", maintain_order="left").join(
            ok_items, on="item", how="semi", maintain_order="left")
        if df.height == 0:
            break
    dropped[f"k-core (users < {k_user} or items < {k_item} events)"] += start - df.height
    log.debug("k-core converged after %d rounds: %d → %d events", rounds, start, df.height)
    return df
