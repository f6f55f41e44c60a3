"""The prepare stage end to end: real benchmark counts, outputs, reuse and the CLI."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core.artifacts import load_manifest, read_json
from semid.data import prepare, summary
from semid.data.config import PrepareConfig

runner = CliRunner()


def prep(tmp_path, shared, dataset, **kw):
    return prepare.run(PrepareConfig(dataset=dataset, **kw), tmp_path / dataset, data_dir=shared)


@pytest.mark.parametrize("dataset,users,items,events", [
    ("beauty", 22363, 12101, 198502),
    ("sports", 35598, 18357, 296337),
    ("scientific", 8442, 4385, 59384),
    ("office", 4905, 2420, 53258),
])
def test_named_datasets_match_published_counts(tmp_path, shared_data, dataset, users, items, events):
    out = prep(tmp_path, shared_data, dataset)
    stats = read_json(out / "stats.json")
    assert (stats["users"], stats["items"], stats["interactions"]) == (users, items, events)
    test = pl.read_parquet(out / "test.parquet")
    assert test.height == users and test["user_id"].n_unique() == users
    inter = pl.read_parquet(out / "interactions.parquet")
    # every user's last event is the test target, the one before it the validation target
    last = inter.group_by("user_id").agg(pl.col("item_id").last()).sort("user_id")
    assert last["item_id"].to_list() == test.sort("user_id")["target"].to_list()
    it = pl.read_parquet(out / "items.parquet")
    assert it["item_id"].to_list() == list(range(items))
    assert it["text"].null_count() == 0


def test_beauty_item_text_has_real_titles_brand_and_categories(tmp_path, shared_data):
    out = prep(tmp_path, shared_data, "beauty")
    stats = read_json(out / "stats.json")
    assert stats["reader_notes"]["title_source_counts"] == {"title": 12086, "keywords": 15}
    items = pl.read_parquet(out / "items.parquet")
    row = items.filter(pl.col("asin") == "B004756YJA").row(0, named=True)
    assert row["title"] == "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce"
    assert row["brand"] == "OPI" and row["categories"] == ["Makeup", "Nails", "Nail Polish"]
    assert row["text"].startswith("OPI Nail Lacquer") and "Brand: OPI" in row["text"] and "Nail Polish" in row["text"]
    assert stats["item_text"]["items_with_brand"] > 7000
    assert not items.filter(pl.col("brand") == "Unknown").height


def test_office_temporal_split_reports_cold_start_items(tmp_path, shared_data):
    out = prep(tmp_path, shared_data, "office", split="temporal")
    s = read_json(out / "stats.json")["split"]
    train = pl.read_parquet(out / "train.parquet")
    test = pl.read_parquet(out / "test.parquet")
    assert s["test_cold_items"] > 0 and s["test_cold_rows"] == int(test["cold"].sum())
    assert test["timestamp"].min() >= s["test_cut"] > train["timestamp"].max()


def test_held_out_items_on_beauty(tmp_path, shared_data):
    out = prep(tmp_path, shared_data, "beauty", holdout_items_share=0.05)
    s = read_json(out / "stats.json")["split"]
    assert s["held_out_items"] == round(0.05 * 12101)
    assert s["test_cold_rows"] > 500


def write_raw_2014_from_p5(folder, shared):
    """Raw-format Amazon 2014 files holding exactly the P5 Beauty sequences (shuffled lines,
    timestamps with ties) and Python-literal metadata."""
    maps = json.loads((shared / "amazon2014_beauty/p5/datamaps.json").read_text())
    seqs = {}
    rows = []
    for line in (shared / "amazon2014_beauty/p5/sequential_data.txt").read_text().splitlines():
        u, *items = line.split()
        user = maps["id2user"][u]
        seqs[user] = [maps["id2item"][i] for i in items]
        for pos, asin in enumerate(seqs[user]):
            rows.append({"reviewerID": user, "asin": asin, "overall": 5.0, "reviewText": "ok",
                         "unixReviewTime": 1_300_000_000 + (pos // 2) * 86400})
    # ties in time must keep file order, so shuffle users but keep each user's events in order
    random.Random(0).shuffle(rows)
    rows.sort(key=lambda r: (r["reviewerID"], r["unixReviewTime"]))  # stable within a day
    by_user = {}
    for r in rows:
        by_user.setdefault(r["reviewerID"], []).append(r)
    order = list(by_user)
    random.Random(1).shuffle(order)
    folder.mkdir(parents=True)
    with gzip.open(folder / "reviews_Beauty_5.json.gz", "wt") as f:
        for u in order:
            for r in sorted(by_user[u], key=lambda r: seqs[u].index(r["asin"])):
                f.write(json.dumps(r) + "\n")
    titles = dict(line.split("\t", 1) for line in (shared / "amazon2014_beauty/metadata/titles.tsv").read_text().splitlines()[1:])
    with gzip.open(folder / "meta_Beauty.json.gz", "wt") as f:
        for asin in maps["item2id"]:
            meta = {"asin": asin, "categories": [["Beauty", "Makeup"]]}
            if asin in titles:
                meta["title"] = titles[asin]
            f.write(repr(meta) + "\n")
    return seqs


def test_raw_2014_reader_gives_the_p5_sequences(tmp_path, shared_data):
    pytest.importorskip("semid.data.readers.amazon")
    seqs = write_raw_2014_from_p5(tmp_path / "raw", shared_data)
    raw = prepare.run(PrepareConfig(dataset="beauty", format="amazon2014"), tmp_path / "r1", path=tmp_path / "raw")
    p5 = prep(tmp_path, shared_data, "beauty")

    def sequences(out):
        users = pl.read_parquet(out / "users.parquet")
        items = pl.read_parquet(out / "items.parquet").select("item_id", "asin")
        inter = pl.read_parquet(out / "interactions.parquet").join(users, on="user_id").join(items, on="item_id")
        return {r["user"]: r["asin"] for r in inter.sort("position").group_by("user").agg("asin").iter_rows(named=True)}

    got_raw, got_p5 = sequences(raw), sequences(p5)
    assert got_raw == got_p5 == seqs
    s = read_json(raw / "stats.json")
    assert (s["users"], s["items"], s["interactions"]) == (22363, 12101, 198502)


def test_stage_is_reused_when_unchanged_and_redone_when_config_changes(tmp_path):
    cfg = PrepareConfig(dataset="toy")
    out = prepare.run(cfg, tmp_path)
    first = load_manifest(out)
    assert prepare.run(cfg, tmp_path) == out
    assert load_manifest(out)["started"] == first["started"]  # reused, not rewritten
    prepare.run(PrepareConfig(dataset="toy", k_core=6), tmp_path)
    again = load_manifest(out)
    assert again["config"]["k_core"] == 6
    assert set(again) >= {"config", "inputs", "outputs", "versions", "seed", "wall_time_s", "hardware"}


def test_cli_prepare_toy_and_errors(tmp_path):
    res = runner.invoke(app, ["prepare", "--dataset", "toy", "--out", str(tmp_path / "t"), "k_core=3"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t/data/train.csv").is_file() and (tmp_path / "t/data/stats.json").is_file()
    res = runner.invoke(app, ["prepare", "--dataset", "toy", "--out", str(tmp_path / "t"), "kcore=3"])
    assert res.exit_code == 2 and "unknown config key 'kcore'" in res.output
    # --out: the default folder (runs/beauty) may be locked by a real run on the same machine
    res = runner.invoke(app, ["prepare", "--dataset", "beauty", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "semid download beauty" in res.output
    res = runner.invoke(app, ["prepare", "--dataset", "nope", "--data-dir", str(tmp_path), "--out", str(tmp_path / "n")])
    assert res.exit_code == 2 and "unknown dataset 'nope'" in res.output


def test_missing_text_policies(tmp_path):
    (tmp_path / "d").mkdir()
    seq = "\n".join(f"U{u} " + " ".join(f"I{(u + j) % 12}" for j in range(6)) for u in range(30))
    (tmp_path / "d/user_sequence.txt").write_text(seq + "\n")
    (tmp_path / "d/item_text.txt").write_text("".join(f"I{i} item number {i}\n" for i in range(10)))  # I10, I11: none
    out = prepare.run(PrepareConfig(dataset="x", format="gram"), tmp_path / "a", path=tmp_path / "d")
    items = pl.read_parquet(out / "items.parquet")
    assert items.filter(pl.col("asin") == "I11")["text"].item() == "item I11"
    assert read_json(out / "stats.json")["item_text"]["items_without_text"] == 2
    out = prepare.run(PrepareConfig(dataset="x", format="gram", missing_text="drop"), tmp_path / "b", path=tmp_path / "d")
    s = read_json(out / "stats.json")
    assert s["items"] == 10 and s["dropped_rows"]["item without text"] == 25  # I10: 13 events, I11: 12
    from semid.core.errors import DataError

    for engine in ("memory", "streaming"):  # the same message, naming the same items, from both engines
        with pytest.raises(DataError, match=r"2 items have no text \(e.g. I10, I11\)"):
            prepare.run(PrepareConfig(dataset="x", format="gram", missing_text="error", engine=engine), tmp_path / f"c-{engine}",
                        path=tmp_path / "d")


def test_sequence_length_stats_from_a_histogram_equal_polars():
    """stats.json's sequence lengths come from users per length (what the streaming engine can
    add up over ranges of users); they must equal polars' on the lengths themselves."""
    rng = random.Random(5)
    for n in (1, 2, 3, 7, 100, 1001):
        lengths = pl.Series([rng.choice([1, 2, 2, 3, 5, 8, 40]) for _ in range(n)])
        hist = summary.length_histogram(lengths)
        got = summary.record(SimpleNamespace(skipped={}, notes={}), raw_events=0, n_events=int(lengths.sum()), n_items=1,
                             lengths=hist, time_range=None, timestamps_missing=0, dropped=Counter(), items_filled={},
                             text_stats={}, split_info={}, rows={"train": 0, "val": 0, "test": 0},
                             cold={"val": 0, "test": 0, "test_items": 0})
        want = {"min": lengths.min(), "mean": round(lengths.mean(), 3), "max": lengths.max(),
                **{f"p{int(p * 100)}": float(lengths.quantile(p, "nearest")) for p in (0.25, 0.5, 0.75, 0.9, 0.99)}}
        assert got["sequence_length"] == want and got["users"] == n
