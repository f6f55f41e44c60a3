"""The Spark job cleans and k-cores raw reviews as ``semid prepare`` does: the job followed by
``semid prepare --format spark`` gives the tables and statistics of ``semid prepare`` on the raw file."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys

import polars as pl
import pytest

from semid.core.artifacts import read_json
from semid.core.errors import ConfigError, DataError
from semid.data import prepare
from semid.data.config import PrepareConfig
from test_prepare_streaming import TABLES, write_2018

pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'semid[spark]')")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime (apt install default-jre-headless)", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

from semid.data import spark_job  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = (SparkSession.builder.master("local[1]").appName("semid-test").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    yield session
    session.stop()


def job(spark, raw, out, **opts) -> dict:
    settings = {"min_rating": None, "dedup": True, "k_user": 5, "k_item": 5} | opts
    result = spark_job.run(spark, fmt="amazon2018", reviews=[str(raw / "Toys_5.json.gz")], out=str(out),
                           meta=str(raw / "meta_Toys.json.gz"), **settings)
    (out / spark_job.JOB_FILE).write_text(json.dumps(result))
    return result


def assert_same_run(raw_run, spark_run):
    for name in TABLES:
        a, b = pl.read_parquet(raw_run / f"{name}.parquet"), pl.read_parquet(spark_run / f"{name}.parquet")
        assert a.schema == b.schema and a.equals(b), f"{name}.parquet differs"
    sa, sb = read_json(raw_run / "stats.json"), read_json(spark_run / "stats.json")
    for key in ("users", "items", "interactions", "source_events", "dropped_rows", "sequence_length", "split",
                "time_range"):
        assert sa[key] == sb[key], key
    # the text policy sees the items before the k-core here, after it there: only that count differs
    text_a, text_b = sa["item_text"], sb["item_text"]
    assert text_b["items_without_text"] <= text_a["items_without_text"]
    assert {k: v for k, v in text_a.items() if k != "items_without_text"} == \
        {k: v for k, v in text_b.items() if k != "items_without_text"}


@pytest.mark.parametrize("opts,cfg", [
    ({}, {}),
    ({"min_rating": 3.0, "k_user": 3, "k_item": 3}, {"min_rating": 3.0, "k_core": 3}),
], ids=["default", "rating-k3"])
def test_job_then_prepare_equals_prepare_on_the_raw_file(tmp_path, spark, opts, cfg):
    raw = tmp_path / "raw"
    write_2018(raw, random.Random(7), 6000, 400, 300)
    lines = gzip.decompress((raw / "Toys_5.json.gz").read_bytes()).decode().splitlines()
    lines.insert(10, json.dumps({"reviewerID": "", "asin": "I1", "overall": 5.0, "unixReviewTime": 1}))
    (raw / "Toys_5.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = job(spark, raw, tmp_path / "events", **opts)
    assert result["malformed_lines"] == {"malformed JSON": 0, "missing user or item": 1}
    assert result["dropped_rows"]["missing user or item"] == 0 and result["k_core_rounds"] >= 2
    direct = prepare.run(PrepareConfig(format="amazon2018", dataset="toys", engine="memory", strict=False, **cfg),
                         tmp_path / "a", path=raw)
    via = prepare.run(PrepareConfig(format="spark", dataset="toys", **cfg), tmp_path / "b", path=tmp_path / "events")
    assert_same_run(direct, via)
    assert read_json(via / "stats.json")["dropped_rows"]["repeated (user, item) event"] > 0


def test_malformed_lines_are_counted_and_the_cli_writes_job_json(tmp_path, spark):
    raw = tmp_path / "raw"
    write_2018(raw, random.Random(3), 2000, 150, 120)
    lines = gzip.decompress((raw / "Toys_5.json.gz").read_bytes()).decode().splitlines()
    (raw / "Toys_5.json").write_text("\n".join(lines[:5] + ["{not json", *lines[5:]]) + "\n")
    out = tmp_path / "events"
    res = subprocess.run([sys.executable, "-m", "semid.data.spark_job", "--master", "local[1]", "--format", "amazon2018",
                          "--reviews", str(raw / "Toys_5.json"), "--meta", str(raw / "meta_Toys.json.gz"),
                          "--out", str(out), "--k-core", "2"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    written = read_json(out / spark_job.JOB_FILE)
    assert written["malformed_lines"] == {"malformed JSON": 1, "missing user or item": 0}
    assert written["source_events"] == len(lines)
    assert "events read" in res.stdout
    run = prepare.run(PrepareConfig(format="spark", dataset="toys"), tmp_path / "run", path=out)
    stats = read_json(run / "stats.json")
    assert stats["skipped_lines"] == {"malformed JSON (Spark job)": 1}
    assert stats["interactions"] == written["events"]


def test_settings_that_contradict_the_job_and_missing_outputs_are_clear_errors(tmp_path, spark):
    raw = tmp_path / "raw"
    write_2018(raw, random.Random(5), 1500, 100, 80)
    job(spark, raw, tmp_path / "events", k_user=2, k_item=2)
    with pytest.raises(ConfigError, match=r"user_k=5 \(the job: 2\)"):
        prepare.run(PrepareConfig(format="spark", k_core=5), tmp_path / "r1", path=tmp_path / "events")
    with pytest.raises(ConfigError, match="missing_text=drop"):
        prepare.run(PrepareConfig(format="spark", missing_text="drop"), tmp_path / "r2", path=tmp_path / "events")
    with pytest.raises(DataError, match="not the output of the Spark job"):
        prepare.run(PrepareConfig(format="spark"), tmp_path / "r3", path=raw)
    with pytest.raises(SystemExit, match="Python literals"):
        spark_job.main(["--format", "amazon2014", "--reviews", "x", "--out", str(tmp_path / "x")])
