"""Raw Amazon readers (2014, 2018, 2023): real 2018 files, small generated files, bad input."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.readers import amazon, amazon_meta
from semid.data.readers.amazon import read_amazon2014, read_amazon2018, read_amazon2023
from semid.data.text import clean_html


def cfg(**kw) -> PrepareConfig:
    return PrepareConfig(**kw)


def write(path: Path, lines: list[str], gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def review(user: str, asin: str, t: int = 1_400_000_000, rating: float = 5.0) -> str:
    return json.dumps({"reviewerID": user, "asin": asin, "overall": rating, "reviewText": "fine",
                       "summary": "ok", "unixReviewTime": t, "reviewTime": "05 13, 2014"})


@pytest.fixture(params=[True, False], ids=["whole-file", "blocks"])
def both_paths(request, monkeypatch):
    """Run a test through the one-scan fast path and through the block path."""
    monkeypatch.setattr(amazon, "WHOLE_FILE_FIRST", request.param)
    return request.param


# ---------------------------------------------------------------- real 2018 files

@pytest.mark.shared_data
def test_magazine_2018_reviews_and_metadata(shared_data, both_paths):
    src = read_amazon2018(shared_data / "amazon2018_magazine_raw", cfg())
    inter = src.interactions
    assert inter.height == 2375
    assert inter["user"].n_unique() == 348
    assert inter["item"].n_unique() == 157
    assert inter.schema["timestamp"] == pl.Int64 and inter["timestamp"].null_count() == 0
    assert inter.row(0) == ("A5QQOOZJOVPSF", "B00005N7P0", 1393372800, 4.0)  # file order kept
    assert src.notes["category"] == "Magazine_Subscriptions"
    assert src.notes["meta_file"] == "meta_Magazine_Subscriptions.json.gz"
    assert src.notes["meta_lines"] == 3385
    items = src.items
    assert items.height == 151 == src.notes["items_with_meta"]
    assert src.notes["items_without_meta"] == 6
    assert items["asin"].n_unique() == 151
    assert src.notes["meta_duplicates"] == 98  # 249 lines for the 151 reviewed ASINs
    # HTML debris titles become null; the few real titles survive, clean
    assert sorted(items["title"].drop_nulls()) == ["Gourmet (1-year)", "SmartMoney (1-year)", "Woman's Day"]
    for col in ("title", "brand", "description", "price"):
        for value in items[col].drop_nulls():
            assert "<" not in value and "&amp;" not in value and "{" not in value, (col, value)
    cats = items["categories"].explode().drop_nulls()
    assert "Professional & Trade" in cats.to_list()
    assert not any("&amp;" in c for c in cats)
    assert not src.skipped


@pytest.mark.shared_data
def test_all_beauty_2018_without_metadata(shared_data, both_paths):
    src = read_amazon2018(shared_data / "amazon2018_all_beauty_raw", cfg())
    inter = src.interactions
    assert (inter.height, inter["user"].n_unique(), inter["item"].n_unique()) == (5269, 991, 85)
    first, last = (datetime.fromtimestamp(t, UTC).date().isoformat()
                   for t in (inter["timestamp"].min(), inter["timestamp"].max()))
    assert (first, last) == ("2004-09-21", "2018-08-23")
    assert src.items.height == 0 and src.notes["meta_file"] is None
    assert src.files == [shared_data / "amazon2018_all_beauty_raw" / "All_Beauty_5.json.gz"]


@pytest.mark.shared_data
def test_reviews_file_can_be_given_directly(shared_data):
    src = read_amazon2018(shared_data / "amazon2018_magazine_raw" / "Magazine_Subscriptions_5.json.gz", cfg())
    assert src.interactions.height == 2375 and src.items.height == 151


# ---------------------------------------------------------------- 2014 and 2023, generated

def test_2014_python_literal_metadata(tmp_path, both_paths):
    write(tmp_path / "reviews_Beauty_5.json.gz",
          [review("U1", "A1", 3), review("U1", "A2", 4, 2.0), review("U2", "A1", 5)])
    meta = [
        repr({"asin": "A1", "title": "Nail Polish &amp; Remover", "brand": "OPI", "price": 12.5,
              "categories": [["Beauty", "Makeup", "Nails"], ["Beauty", "Tools"]],
              "description": "<b>Shiny</b>  and\nquick", "salesRank": {"Beauty": 12}}),
        repr({"asin": "A2", "categories": [["Beauty"]], "imUrl": "http://x/y.jpg"}),  # no title
        "{'asin': 'ZZ', 'title': broken",  # never parsed: nobody reviewed ZZ
        repr({"asin": "A1", "title": "again"}),  # a repeat: the first line wins
    ]
    write(tmp_path / "meta_Beauty.json.gz", meta)
    src = read_amazon2014(tmp_path, cfg())
    assert src.interactions.rows() == [("U1", "A1", 3, 5.0), ("U1", "A2", 4, 2.0), ("U2", "A1", 5, 5.0)]
    items = {r["asin"]: r for r in src.items.iter_rows(named=True)}
    assert items["A1"]["title"] == "Nail Polish & Remover"
    assert items["A1"]["categories"] == ["Beauty", "Makeup", "Nails", "Tools"]
    assert items["A1"]["price"] == "$12.50"
    assert items["A1"]["description"] == "Shiny and quick"
    assert items["A2"]["title"] is None and items["A2"]["brand"] is None
    assert src.notes["meta_duplicates"] == 1 and src.notes["meta_lines"] == 4
    assert not src.skipped


@pytest.mark.parametrize("name", ["reviews_Toys.json", "reviews_Toys_5.json", "reviews_Toys.json.gz"])
def test_2014_other_file_names(tmp_path, name):
    write(tmp_path / name, [review("U1", "A1")], gz=name.endswith(".gz"))
    src = read_amazon2014(tmp_path, cfg())
    assert src.interactions.height == 1 and src.notes["category"] == "Toys"
    assert src.notes["meta_file"] is None


def test_2023_milliseconds_and_parent_asin(tmp_path, both_paths):
    def r23(user, asin, parent, ms, rating):
        return json.dumps({"rating": rating, "title": "t", "text": "x", "images": [], "asin": asin,
                           "parent_asin": parent, "user_id": user, "timestamp": ms,
                           "helpful_vote": 0, "verified_purchase": True})

    write(tmp_path / "All_Beauty.jsonl", [r23("U1", "V1", "P1", 1_588_687_728_923, 5.0),
                                           r23("U1", "V2", "P1", 1_588_687_729_999, 3.0)], gz=False)
    write(tmp_path / "meta_All_Beauty.jsonl", [
        json.dumps({"main_category": "All Beauty", "title": "Lip Balm", "store": "Burt's",
                    "categories": [], "price": None, "description": ["Soft"], "features": ["Natural"],
                    "parent_asin": "P1", "details": {}}),
        json.dumps({"main_category": "All Beauty", "title": "Other", "parent_asin": "P9"})], gz=False)
    src = read_amazon2023(tmp_path, cfg())
    assert src.interactions.rows() == [("U1", "P1", 1_588_687_728, 5.0), ("U1", "P1", 1_588_687_729, 3.0)]
    (item,) = src.items.iter_rows(named=True)
    assert (item["asin"], item["title"], item["brand"]) == ("P1", "Lip Balm", "Burt's")
    assert item["categories"] == ["All Beauty"]  # empty categories: main_category instead
    assert item["description"] == "Soft Natural" and item["price"] is None


def test_min_rating_is_applied_once_by_prepare_and_counted(tmp_path):
    from semid.core.artifacts import read_json
    from semid.data import prepare

    write(tmp_path / "Toys_5.json.gz", [review("U1", "A1", rating=1.0), review("U1", "A2", rating=4.0),
                                        review("U2", "A1", rating=3.0)])
    src = read_amazon2018(tmp_path, cfg())
    assert src.interactions["rating"].to_list() == [1.0, 4.0, 3.0]  # the reader keeps every event
    out = prepare.run(cfg(min_rating=3.0, k_core=0), tmp_path / "run", path=tmp_path)
    stats = read_json(out / "stats.json")
    assert stats["interactions"] == 2 and stats["dropped_rows"]["rating below 3.0"] == 1


# ---------------------------------------------------------------- finding files

def test_category_choice_and_errors(tmp_path):
    write(tmp_path / "Toys_5.json.gz", [review("U1", "A1")])
    write(tmp_path / "Toys.json.gz", [review("U1", "A1"), review("U2", "A2")])  # full file: 5-core wins
    assert read_amazon2018(tmp_path, cfg()).notes["review_file"] == "Toys_5.json.gz"
    write(tmp_path / "Books_5.json.gz", [review("U1", "A1")])
    with pytest.raises(DataError, match=r"several categories found: Books \(Books_5.json.gz\), Toys"):
        read_amazon2018(tmp_path, cfg())
    assert read_amazon2018(tmp_path, cfg(category="Books")).notes["category"] == "Books"
    with pytest.raises(DataError, match=r"looked for Games_5\.json\.gz, Games_5\.json, Games\.json\.gz"):
        read_amazon2018(tmp_path, cfg(category="Games"))
    with pytest.raises(DataError, match=r"no amazon2023 reviews file.*<Category>\.jsonl\.gz"):
        read_amazon2023(tmp_path, cfg())
    with pytest.raises(DataError, match="folder not found"):
        read_amazon2018(tmp_path / "nope", cfg())


# ---------------------------------------------------------------- bad input

@pytest.fixture
def small_blocks(monkeypatch):
    """Tiny blocks, so line numbers must carry across many blocks."""
    monkeypatch.setattr(amazon, "BLOCK_BYTES", 300)


def lines_with(bad: dict[int, str], n: int = 40) -> list[str]:
    return [bad.get(i, review(f"U{i % 7}", f"A{i % 5}", 1_400_000_000 + i)) for i in range(1, n + 1)]


@pytest.mark.parametrize("bad, message", [
    ('{"reviewerID": "U1", "asin": "A1", "overall": 5.0', "malformed JSON"),
    ('{"reviewerID": "U1", "overall": 5.0, "unixReviewTime": 1}', "missing required field 'asin'"),
    ('{"reviewerID": "U1", "asin": "", "unixReviewTime": 1}', "missing required field 'asin'"),
    ('{"reviewerID": "U1", "asin": "A1", "unixReviewTime": "yesterday"}', "field 'unixReviewTime' is not an integer"),
    ('{"reviewerID": "U1", "asin": "A1", "overall": "five"}', "field 'overall' is not a number"),
    ('{"reviewerID": {"id": 1}, "asin": "A1"}', "field 'reviewerID' is not a string"),
    ('["not", "an", "object"]', "line is not a JSON object"),
])
def test_bad_line_is_named_in_strict_mode(tmp_path, small_blocks, both_paths, bad, message):
    write(tmp_path / "Toys_5.json.gz", lines_with({23: bad}))
    with pytest.raises(DataError, match=message) as err:
        read_amazon2018(tmp_path, cfg())
    assert err.value.line == 23
    assert "Toys_5.json.gz, line 23: " in str(err.value)


def test_lenient_mode_skips_and_counts_by_reason(tmp_path, small_blocks, both_paths):
    bad = {3: "{oops", 9: "{also bad", 17: '{"reviewerID": "U1", "unixReviewTime": 1}',
           30: '{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 1.5}'}
    lines = lines_with(bad)
    write(tmp_path / "Toys_5.json.gz", lines)
    src = read_amazon2018(tmp_path, cfg(strict=False))
    assert dict(src.skipped) == {"malformed JSON": 2, "missing required field 'asin'": 1,
                                 "field 'unixReviewTime' is not an integer": 1}
    assert src.notes["skipped_examples"]["malformed JSON"] == "Toys_5.json.gz:3"
    good = [json.loads(line) for i, line in enumerate(lines, start=1) if i not in bad]
    assert src.interactions["timestamp"].to_list() == [r["unixReviewTime"] for r in good]


def test_truncated_gzip(tmp_path, both_paths):
    whole = gzip.compress("".join(review(f"U{i}", f"A{i}") + "\n" for i in range(5000)).encode())
    (tmp_path / "Toys_5.json.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_amazon2018(tmp_path, cfg(strict=False))


@pytest.mark.parametrize("name, content", [("Toys_5.json", b""), ("Toys_5.json.gz", gzip.compress(b""))])
def test_empty_file(tmp_path, both_paths, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match="file is empty"):
        read_amazon2018(tmp_path, cfg())


def test_bad_metadata_line_of_a_reviewed_item(tmp_path):
    write(tmp_path / "Toys_5.json.gz", [review("U1", "A1"), review("U1", "A2")])
    write(tmp_path / "meta_Toys.json.gz", [json.dumps({"asin": "A1", "title": "ok"}),
                                           '{"title": "cut off", "asin": "A2", ',
                                           '{"title": "unreviewed, never parsed", "asin": "Z9", '])
    with pytest.raises(DataError, match=r"meta_Toys.json.gz, line 2: malformed metadata line"):
        read_amazon2018(tmp_path, cfg())
    src = read_amazon2018(tmp_path, cfg(strict=False))
    assert src.items["asin"].to_list() == ["A1"]
    assert src.skipped == {"malformed metadata line": 1}


# ---------------------------------------------------------------- clean_html

@pytest.mark.parametrize("raw, clean", [
    ('<span class="a-size-medium a-color-secondary"', None),
    (' Magazines" />', None),
    (".a-box-inner{background-color:#fff}#aloha .selected{color:red}", None),
    ("\n\n\n<script", None),
    ("<script>var x = 1;</script>Real text", "Real text"),
    ("Professional &amp; Trade", "Professional & Trade"),
    ("&lt;b&gt;Bold&lt;/b&gt;  text", "Bold text"),
    ('<a href="/x?a=1&b=2">Learn more</a> about\n  it', "Learn more about it"),
    ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ("F&W Publications", "F&W Publications"),
    ("   ", None),
    ("", None),
    (None, None),
])
def test_clean_html(raw, clean):
    assert clean_html(raw) == clean


@pytest.mark.parametrize("raw", [
    b'{"asin": "B1", "title": "Caf\xc3\xa9 &amp; Tea", "price": 3.5, "category": ["A", "B"]}',
    b'{"asin": "B1", "price": NaN, "title": "x"}',          # orjson refuses NaN; json reads it
    b'{"asin": "B1", "title": "broken \\ud8bf escape"}',     # a lone surrogate
    b'{"asin": "B1", "title": "bad \xff byte"}',             # invalid UTF-8: replaced
    b"{'asin': 'B1', 'title': 'a Python literal'}",          # 2014 metadata
    b'{"asin": "B1", "title": "dup", "title": "last wins"}',
])
def test_meta_line_parses_as_json_and_literal_eval_do(raw):
    """The fast JSON parser gives what ``json.loads`` (then ``ast.literal_eval``) gives, or hands
    the line to them: no metadata line reads differently for the speed-up."""
    import ast
    text = raw.decode("utf-8", errors="replace")
    try:
        slow = json.loads(text)
    except ValueError:
        slow = ast.literal_eval(text.strip())
    fast = amazon_meta._parse_meta_line(raw)
    assert repr(fast) == repr(slow)  # repr: NaN != NaN, and surrogates must match too
    assert amazon_meta.fields_2018(fast) == amazon_meta.fields_2018(slow)


def test_cached_field_cleaning_hands_out_fresh_lists():
    """Categories and prices are cleaned once per distinct value; a caller changing its list must
    not change what the next item gets."""
    first = amazon_meta._categories(["Beauty", " Skin &amp; Care ", "Beauty"])
    assert first == ["Beauty", "Skin & Care"]
    first.append("changed")
    assert amazon_meta._categories(["Beauty", " Skin &amp; Care ", "Beauty"]) == ["Beauty", "Skin & Care"]
    assert amazon_meta._categories([["Beauty", "Skin"], ["Beauty"]]) == ["Beauty", "Skin"]  # 2014: lists of lists
    assert amazon_meta._price("$1,299.00") == amazon_meta._price("$1,299.00") == "$1,299.00"
    assert amazon_meta._price("call for price") is None and amazon_meta._price(4) == "$4.00"
    assert amazon_meta._text(["one", "two"]) == "one two" and amazon_meta._text(["one", None, 3]) == "one 3"
