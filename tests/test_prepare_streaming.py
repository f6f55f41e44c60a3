"""The streaming prepare engine gives the same outputs as the in-memory one, table for table."""

from __future__ import annotations

import gzip
import json
import random

import polars as pl
import pyarrow.parquet as pq
import pytest

from semid.core.artifacts import load_manifest, read_json
from semid.core.errors import DataError
from semid.data import parts, prepare, streaming
from semid.data.config import PrepareConfig
from semid.data.readers import amazon, amazon_meta

TABLES = ("items", "users", "interactions", "train", "val", "test")


def run_both(tmp_path, *, data_dir=None, path=None, **cfg):
    return [prepare.run(PrepareConfig(engine=engine, **cfg), tmp_path / engine, data_dir=data_dir, path=path)
            for engine in ("memory", "streaming")]


def assert_same(mem, st, csv=True):
    for name in TABLES:
        a, b = pl.read_parquet(mem / f"{name}.parquet"), pl.read_parquet(st / f"{name}.parquet")
        assert a.schema == b.schema, name
        assert a.equals(b), f"{name}.parquet differs"
        if csv:
            assert (mem / f"{name}.csv").read_bytes() == (st / f"{name}.csv").read_bytes(), f"{name}.csv differs"
    sa, sb = read_json(mem / "stats.json"), read_json(st / "stats.json")
    assert sa == sb
    assert list(sa["dropped_rows"]) == list(sb["dropped_rows"])
    assert not (st / ".prepare-work").exists()  # the engine's scratch files are gone
    assert set(load_manifest(st)["outputs"]) == set(load_manifest(mem)["outputs"])


def write_2018(folder, rng: random.Random, n: int, n_users: int, n_items: int, *, missing_time=0.02):
    """A raw 2018 reviews file with repeats, equal and missing timestamps, and metadata for
    most items (some without any text)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for _ in range(n):
        rec = {"reviewerID": f"U{rng.randrange(n_users)}", "asin": f"I{int(rng.paretovariate(1.2)) % n_items}",
               "overall": float(rng.randint(1, 5)), "reviewText": "ok"}
        if rng.random() >= missing_time:
            rec["unixReviewTime"] = 1_300_000_000 + rng.randrange(0, 400) * 86_400
        lines.append(json.dumps(rec))
    (folder / "Toys_5.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    meta = [json.dumps({"asin": f"I{i}", "title": f"Toy {i}" if i % 7 else "", "brand": "B" if i % 3 else "",
                        "category": ["Toys", f"Sub {i % 4}"] if i % 5 else []})
            for i in range(n_items) if i % 11]
    (folder / "meta_Toys.json.gz").write_bytes(gzip.compress(("\n".join(meta) + "\n").encode()))


@pytest.fixture
def small_ranges(monkeypatch):
    """Many ranges of users and parts of items, so that the cross-range logic runs on a small file."""
    monkeypatch.setattr(streaming, "BUCKET_ROWS", 500)
    monkeypatch.setattr(streaming, "ITEM_ROWS", 37)
    monkeypatch.setattr(streaming, "_BIN", 16)


@pytest.mark.parametrize("cfg", [
    {},
    {"min_rating": 3.0, "k_core": 3},
    {"split": "temporal", "k_core": 2},
    {"holdout_items_share": 0.1, "missing_text": "drop"},
    {"dedup": False, "k_core": 0, "temporal_cut": None},
], ids=["default", "rating-k3", "temporal", "holdout-drop", "no-dedup-no-kcore"])
def test_generated_raw_file_same_outputs(tmp_path, small_ranges, cfg):
    write_2018(tmp_path / "raw", random.Random(7), 6000, 400, 300, missing_time=0 if cfg.get("split") else 0.02)
    mem, st = run_both(tmp_path, path=tmp_path / "raw", format="amazon2018", dataset="toys", **cfg)
    assert_same(mem, st)
    assert read_json(st / "stats.json")["interactions"] > 1000


def test_block_path_and_lenient_lines(tmp_path, small_ranges, monkeypatch):
    write_2018(tmp_path / "raw", random.Random(3), 3000, 200, 150)
    gz = tmp_path / "raw/Toys_5.json.gz"
    lines = gzip.decompress(gz.read_bytes()).decode().splitlines()
    lines[10] = "{not json"
    lines[20] = json.dumps({"asin": "I1", "overall": 5.0})  # no reviewer
    gz.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    monkeypatch.setattr(amazon, "BLOCK_BYTES", 4096)
    mem, st = run_both(tmp_path, path=tmp_path / "raw", format="amazon2018", dataset="toys", strict=False)
    assert_same(mem, st)
    skipped = read_json(st / "stats.json")["skipped_lines"]
    assert skipped == {"malformed JSON": 1, "missing required field 'reviewerID'": 1}
    with pytest.raises(DataError, match="line 11"):
        prepare.run(PrepareConfig(engine="streaming", format="amazon2018", dataset="toys"), tmp_path / "strict",
                    path=tmp_path / "raw")
    assert not (tmp_path / "strict/data/.prepare-work").exists()


@pytest.mark.parametrize("split", ["loo", "temporal"])
def test_toy_same_outputs(tmp_path, small_ranges, split):
    mem, st = run_both(tmp_path, dataset="toy", split=split, k_core=3)
    assert_same(mem, st)


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset,cfg", [
    ("beauty", {}),
    ("beauty", {"holdout_items_share": 0.05}),
    ("office", {"split": "temporal"}),
    ("office", {}),
])
def test_real_benchmarks_same_outputs(tmp_path, shared_data, dataset, cfg):
    mem, st = run_both(tmp_path, data_dir=shared_data, dataset=dataset, **cfg)
    assert_same(mem, st)


@pytest.mark.shared_data
def test_real_raw_2018_same_outputs(tmp_path, shared_data, small_ranges):
    mem, st = run_both(tmp_path, data_dir=shared_data, dataset="magazine", path=shared_data / "amazon2018_magazine_raw",
                       format="amazon2018", k_core=2)
    assert_same(mem, st)


def test_lower_quantile_matches_polars():
    rng = random.Random(1)
    for n in (1, 2, 7, 1000, 5001):
        values = [rng.choice([rng.randrange(10**9), 5, 5, 5]) for _ in range(n)]
        lf = pl.LazyFrame({"timestamp": values}, schema={"timestamp": pl.Int64})
        for q in (0.0, 0.1, 0.5, 0.8888, 0.9, 1.0):
            assert streaming._lower_quantile(lf, q) == pl.Series(values).quantile(q, "lower"), (n, q)


def test_engine_is_not_part_of_the_fingerprint(tmp_path):
    out = prepare.run(PrepareConfig(dataset="toy", engine="memory"), tmp_path)
    before = load_manifest(out)["started"]
    prepare.run(PrepareConfig(dataset="toy", engine="streaming"), tmp_path)
    assert load_manifest(out)["started"] == before  # same outputs, so the stage is reused
    assert "engine" not in load_manifest(out)["config"]


@pytest.mark.parametrize("block", [64, 1 << 20], ids=["tiny-blocks", "one-block"])
def test_stream_meta_matches_read_meta(tmp_path, block):
    """Duplicates (first wins, also across blocks), unwanted ASINs, a bad line of a wanted item,
    a line whose parsed ASIN differs from its key, Python-literal lines."""
    lines = [json.dumps({"asin": "A1", "title": "first"}), json.dumps({"asin": "A9", "title": "unwanted"}),
             "{'asin': 'A2', 'title': 'literal &amp; quotes', 'categories': [['Toys', 'Cars']]}",
             json.dumps({"asin": "A1", "title": "second"}), '{"asin": "A3", "title": broken',
             json.dumps({"asin": "A3", "title": "after the broken one"}), "",
             json.dumps({"asin": "A4", "title": "x"}) + " ",
             json.dumps({"asin": "A5", "title": "key is A5", "also": {"asin": "A4"}})]
    path = tmp_path / "meta_Toys.json"
    path.write_text("\n".join(lines) + "\n")
    wanted = {"A1", "A2", "A3", "A4", "A5"}
    layout = amazon.AMAZON2014
    lenient = [amazon.Issues(False), amazon.Issues(False)]
    items, notes = amazon_meta.read_meta(path, layout, wanted, lenient[0], block)
    files, snotes = amazon_meta.stream_meta(path, layout, pl.Series(sorted(wanted)), lenient[1], tmp_path / "w", block)
    streamed = pl.concat([pl.read_parquet(f) for f in files])
    assert streamed.sort("asin").equals(items.sort("asin"))
    assert snotes.pop("_items_with_meta") == items.height == 4  # A3: its first line is broken
    assert snotes == notes and notes["meta_duplicates"] == 2  # A1 again; A3 after its broken line
    assert lenient[0].counts == lenient[1].counts == {"malformed metadata line": 1}
    assert items.filter(pl.col("asin") == "A1")["title"].item() == "first"
    with pytest.raises(DataError, match="malformed metadata line") as err:
        amazon_meta.stream_meta(path, layout, pl.Series(sorted(wanted)), amazon.Issues(True), tmp_path / "w2", block)
    assert err.value.line == 5


def test_parts_write_equals_one_write_of_the_whole_table(tmp_path, monkeypatch):
    """The part-by-part writer (bounded memory) gives the table one write of the whole would:
    the same rows and types from Parquet (row groups cut inside and across parts), the same CSV
    bytes, with an empty part, nulls and list columns; a table of no parts is an error."""
    monkeypatch.setattr(parts, "ROW_GROUP", 2)
    frames = [pl.DataFrame({"item_id": [0, 1, 2], "title": ["a", None, "c, d"], "categories": [["x", "y"], [], None]}),
              pl.DataFrame({"item_id": [], "title": [], "categories": []},
                           schema={"item_id": pl.Int64, "title": pl.String, "categories": pl.List(pl.String)}),
              pl.DataFrame({"item_id": [3], "title": [None], "categories": [["z"]]},
                           schema={"item_id": pl.Int64, "title": pl.String, "categories": pl.List(pl.String)})]
    files = []
    for k, df in enumerate(frames):
        files.append(tmp_path / f"part-{k}.parquet")
        df.write_parquet(files[-1])
    out = tmp_path / "out"
    parts.write(out, "items", parts.Parts(files, lambda df: df.with_columns(pl.col("item_id") * 10)), csv=True)
    whole = pl.concat(frames).with_columns(pl.col("item_id") * 10)
    assert pl.read_parquet(out / "items.parquet").equals(whole)
    assert pq.ParquetFile(out / "items.parquet").num_row_groups == 3  # 2 + 1 rows, then 1
    flat = whole.with_columns(pl.col("categories").list.join(" > "))
    assert (out / "items.csv").read_bytes() == flat.write_csv().encode()
    with pytest.raises(ValueError, match="no parts"):
        parts.write(out, "empty", parts.Parts([]), csv=False)
    assert not (out / "empty.parquet").exists()
