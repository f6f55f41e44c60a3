"""The synthetic ``toy`` dataset: deterministic, well-formed, and with structure to learn."""

from __future__ import annotations

import time

import polars as pl
import pytest

from semid.data.config import PrepareConfig, ToyConfig
from semid.data.readers import get_reader
from semid.data.readers.toy import read_toy


def _toy(seed: int = 0, **toy) -> PrepareConfig:
    return PrepareConfig(dataset="toy", format="toy", seed=seed, toy=ToyConfig(**toy))


@pytest.fixture(scope="module")
def src():
    return read_toy(None, _toy(0))


def _with_categories(src) -> pl.DataFrame:
    cats = src.items.select("asin", pl.col("categories").list.get(0).alias("top"),
                            pl.col("categories").list.get(1).alias("sub"))
    return src.interactions.join(cats, left_on="item", right_on="asin", how="left", maintain_order="left")


def test_registered_and_deterministic(src):
    again = get_reader("toy")(None, _toy(0))
    assert again.interactions.equals(src.interactions)
    assert again.items.equals(src.items)
    other = read_toy(None, _toy(1))
    assert not other.interactions.equals(src.interactions)
    assert not other.items["title"].equals(src.items["title"])


def test_schema(src):
    assert src.interactions.schema == pl.Schema({"user": pl.String, "item": pl.String, "timestamp": pl.Int64})
    items = src.items
    assert items.height == 300 and items["asin"].n_unique() == 300
    assert items["categories"].dtype == pl.List(pl.String)
    assert (items["categories"].list.len() == 2).all()
    for col in ("title", "brand", "price", "description"):
        assert items[col].null_count() == 0 and (items[col].str.len_chars() > 0).all()
    assert items["price"].str.contains(r"^\$\d+\.\d\d$").all()
    assert items["categories"].list.join(">").n_unique() == 6 * 4
    assert set(src.interactions["item"]) <= set(items["asin"])
    assert src.notes == {"synthetic": True}


def test_sequences(src):
    inter = src.interactions
    lengths = inter.group_by("user").len()["len"]
    assert lengths.len() == 600 and lengths.min() >= 5 and lengths.max() <= 20
    assert inter.unique(["user", "item"]).height == inter.height  # dedup keeps every event
    assert inter["timestamp"].null_count() == 0
    steps = inter.with_columns(pl.col("timestamp").diff().over("user").alias("step"))["step"].drop_nulls()
    assert steps.min() > 0  # strictly increasing per user, in file order
    years = (inter["timestamp"].max() - inter["timestamp"].min()) / (365 * 86400)
    assert 2 < years <= 3


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_item_survives_5_core(seed):
    counts = read_toy(None, _toy(seed)).interactions.group_by("item").len()
    assert counts.height == 300 and counts["len"].min() >= 5


def test_structure(src):
    ev = _with_categories(src).with_columns(pl.col("top").shift(1).over("user").alias("prev_top"),
                                            pl.col("sub").shift(1).over("user").alias("prev_sub"))
    pairs = ev.drop_nulls("prev_top")
    same_top = (pairs["top"] == pairs["prev_top"]).mean()
    same_sub = (pairs["sub"] == pairs["prev_sub"]).mean()
    chance = (ev["top"].value_counts(normalize=True)["proportion"] ** 2).sum()
    assert same_top > 0.6 and same_top > 3 * chance
    assert same_sub > 0.4
    # Users concentrate on few top categories.
    tops_per_user = ev.group_by("user").agg(pl.col("top").n_unique())["top"]
    assert tops_per_user.mean() < 3.5


def test_titles_cluster_by_category(src):
    words = src.items.select("categories", pl.col("title").str.to_lowercase().str.split(" ").alias("w"))
    rows = words.to_dicts()

    def jaccard(a, b):
        return len(set(a) & set(b)) / len(set(a) | set(b))

    same, other = [], []
    for i, a in enumerate(rows[:80]):
        for b in rows[i + 1:80]:
            (same if a["categories"] == b["categories"] else other).append(jaccard(a["w"], b["w"]))
    assert sum(same) / len(same) > 2 * sum(other) / len(other)


def test_temporal_split_has_cold_items(src):
    inter = src.interactions.sort("timestamp")
    cut = inter["timestamp"][int(0.9 * inter.height)]
    train = set(inter.filter(pl.col("timestamp") < cut)["item"])
    test = set(inter.filter(pl.col("timestamp") >= cut)["item"])
    assert len(test - train) >= 1


def test_without_timestamps_and_odd_sizes():
    s = read_toy(None, _toy(5, with_timestamps=False, n_items=40, n_users=30, n_top_categories=12,
                            n_sub_categories=7, n_brands=3, min_len=3, max_len=6))
    assert s.interactions["timestamp"].null_count() == s.interactions.height
    assert s.interactions.group_by("user").len()["len"].min() >= 3
    tops = s.items["categories"].list.get(0).unique()
    assert tops.len() == min(12, s.items.height)  # names stay distinct past the word list


def test_fast():
    t0 = time.perf_counter()
    read_toy(None, _toy(7))
    assert time.perf_counter() - t0 < 1.5  # target < 1 s; slack for a busy shared machine
