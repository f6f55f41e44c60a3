"""`semid compare`: every row trains through its own stage and the one evaluation module."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core.config import ConfigError
from semid.experiments import compare

TOY = ["--dataset", "toy", "ids.method=rqkmeans", "ids.codebook_size=16", "ids.tsne_sample=0",
       "tiger.preset=tiny", "compare.bootstrap=50"]


def test_random_ids_name_keeps_the_shape():
    assert compare.random_ids_name("rqvae-3x256") == "random-3x256"
    assert compare.random_ids_name("rqkmeans-4x64") == "random-4x64"


def test_unknown_model_is_named():
    with pytest.raises(ConfigError, match="unknown model 'sasrec-xx'"):
        compare.model_config("sasrec-xx", compare.CompareConfig(), "rqvae-3x256")


def test_row_settings_and_run_tiger_keys_reach_the_model_config():
    cfg = compare.CompareConfig(settings={"tiger-random": {"max_epochs": 2}}, threads=1)
    _, tiger = compare.model_config("tiger-random", cfg, "rqkmeans-3x16", {"tiger": {"preset": "tiny", "lr": 0.003}})
    assert (tiger.ids, tiger.name, tiger.max_epochs, tiger.lr, tiger.threads) == ("random-3x16", "tiger-random", 2, 0.003, 1)


def test_toy_comparison(tmp_path):
    out = tmp_path / "toy"
    res = CliRunner().invoke(app, ["compare", "--out", str(out), *TOY, "compare.models=[tiger,tiger-random]", "compare.jobs=2",
                                   "--record", str(tmp_path / "results"), "--allow-dirty"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (out / "ids" / "random-3x16" / "semantic_ids.parquet").is_file()  # made for the random-ID row
    table = json.loads((out / "compare" / "comparison.json").read_text())
    rows = {r["model"]: r for r in table["rows"]}
    assert set(rows) == {"tiger", "tiger-random"}
    assert rows["tiger"]["ids"] == "rqkmeans-3x16" and rows["tiger-random"]["ids"] == "random-3x16"
    for name, r in rows.items():
        m = json.loads((out / "models" / name / "metrics.json").read_text())
        assert r["seeds"] == [0] and r["history kept"]["mean"] == {c: m["metrics"][c] for c in r["history kept"]["mean"]}
        assert r["history removed"]["mean"]["recall@10"] == m["metrics_history_removed"]["recall@10"]
        assert r["params"] == json.loads((out / "models" / name / "config.json").read_text())["params"]
        lo, hi = r["history kept"]["ci95"]["recall@10"]
        assert lo <= m["metrics"]["recall@10"] <= hi
    csv = pl.read_csv(out / "compare" / "comparison.csv")
    assert csv["model"].to_list() == ["tiger", "tiger-random"]
    assert csv["recall@10"].to_list() == pytest.approx([rows[n]["history kept"]["mean"]["recall@10"] for n in ("tiger", "tiger-random")])
    md = (out / "compare" / "comparison.md").read_text()
    assert "| tiger-random | 1 |" in md and (out / "compare" / "recall10.png").stat().st_size > 1000
    assert (tmp_path / "results" / "toy" / "comparison.md").read_text() == md  # the table lands beside the records
    rec = json.loads((tmp_path / "results" / "toy" / "tiger-random.json").read_text())
    assert rec["hardware"]["cpus"] >= 1 and rec["source"] == "measured"
    assert rec["metrics"]["recall@10"] == rows["tiger-random"]["history kept"]["mean"]["recall@10"]
    # a second call reuses every finished model: the weights are not rewritten
    weights = out / "models" / "tiger" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    res = CliRunner().invoke(app, ["compare", "--out", str(out), *TOY, "compare.models=[tiger]"])
    assert res.exit_code == 0, res.output
    assert weights.stat().st_mtime_ns == before
    assert [r["model"] for r in json.loads((out / "compare" / "comparison.json").read_text())["rows"]] == ["tiger"]
