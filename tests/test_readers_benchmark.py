"""P5, GRAM, UniSRec and CSV readers: equivalence on real data and clear errors on bad input."""

from __future__ import annotations

import gzip

import pytest

from semid.core.errors import DataError
from semid.data.config import PrepareConfig
from semid.data.readers import get_reader

STRICT, LENIENT = PrepareConfig(), PrepareConfig(strict=False)


def test_p5_and_gram_give_the_same_events(shared_data):
    p5 = get_reader("p5")(shared_data / "amazon2014_beauty", STRICT)
    gram = get_reader("gram")(shared_data / "amazon2014_beauty", STRICT)
    assert p5.interactions.height == 198502
    assert p5.interactions.select("user", "item").equals(gram.interactions.select("user", "item"))


def test_sports_gets_brand_and_categories_from_s3rec_attributes(shared_data):
    src = get_reader("p5")(shared_data / "amazon2014_sports", STRICT)
    items = src.items
    assert items.height == 18357
    assert items["categories"].list.len().mean() > 1  # named through P5's id2attribute
    assert src.notes["title_source_counts"] == {"keywords": 18357}


def test_unisrec_rebuilds_full_sequences(shared_data):
    src = get_reader("unisrec")(shared_data / "amazon2018_scientific_unisrec", STRICT)
    assert src.interactions.height == 59384
    assert src.interactions["user"].n_unique() == 8442
    assert src.items["text"].null_count() == 0 and src.items.height == 4385


def test_csv_reader_reads_train_dev_test_in_order(shared_data):
    src = get_reader("csv")(shared_data / "amazon2014_office_lrd", STRICT)
    assert src.interactions.height == 53258
    assert src.interactions["item"].str.starts_with("B").mean() > 0.9  # named through item2index
    assert src.notes["interaction_files"] == ["train.csv", "dev.csv", "test.csv"]


def write(path, text, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_p5_unknown_id_names_file_and_line(tmp_path):
    write(tmp_path / "datamaps.json", '{"id2user": {"1": "U1", "2": "U2"}, "id2item": {"1": "A", "2": "B"}}')
    write(tmp_path / "sequential_data.txt", "1 1 2\n2 1 9\n")
    with pytest.raises(DataError, match=r"sequential_data.txt, line 2: id 9 is not in datamaps.json"):
        get_reader("p5")(tmp_path, STRICT)
    src = get_reader("p5")(tmp_path, LENIENT)
    assert src.interactions.height == 2 and src.skipped == {"id 9 is not in datamaps.json": 1}


def test_gram_empty_file_and_truncated_gzip(tmp_path):
    write(tmp_path / "a/user_sequence.txt", "")
    with pytest.raises(DataError, match="user_sequence.txt: file is empty"):
        get_reader("gram")(tmp_path / "a", STRICT)
    data = gzip.compress(("U1 A B C\n" * 5000).encode())
    (tmp_path / "b").mkdir()
    (tmp_path / "b/user_sequence.txt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        get_reader("gram")(tmp_path / "b", STRICT)


def test_unisrec_bad_row_and_bad_header(tmp_path):
    write(tmp_path / "X.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 2\t3\n1\t4\n")
    with pytest.raises(DataError, match=r"X.test.inter, line 3: expected 3 tab-separated fields, got 2"):
        get_reader("unisrec")(tmp_path, STRICT)
    assert get_reader("unisrec")(tmp_path, LENIENT).interactions.height == 3
    write(tmp_path / "X.test.inter", "user\titems\n0\t1\n")
    with pytest.raises(DataError, match="header must name"):
        get_reader("unisrec")(tmp_path, STRICT)


def test_csv_bad_time_and_missing_column(tmp_path):
    write(tmp_path / "a/train.csv", "user_id,item_id,time\n1,2,100\n1,3,soon\n")
    with pytest.raises(DataError, match=r"train.csv, line 3: time 'soon' is not a number"):
        get_reader("csv")(tmp_path / "a", STRICT)
    assert get_reader("csv")(tmp_path / "a", LENIENT).skipped == {"time is not a number": 1}
    write(tmp_path / "b/train.csv", "user_id,when\n1,2\n")
    with pytest.raises(DataError, match="no item column"):
        get_reader("csv")(tmp_path / "b", STRICT)
