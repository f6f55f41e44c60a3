"""``semid analyze``: the failure-analysis buckets and counts on a hand-made case, then the command
end to end on a toy run with a tiny TIGER and a small SASRec (built once for the module)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from semid.analysis import failures
from semid.analysis.cases import sample_users
from semid.cli import app as cli
from semid.core.run import RunFolder
from semid.evaluate.stage import read_ranks
from test_serve_api import build_toy_run

# ten users; A = "a", B = "b"; ranks 1-based (None = not in the list), prefix = codes the top-1 shares
# with the target (-1: empty list). Hits at K=10: A 1, 2, 3, 6, 8; B 0, 3, 7 (B's 11 and 20 miss).
HAND = pl.DataFrame({
    "user_id": list(range(10)),
    "history_len": [4, 4, 7, 12, 55, 9, 25, 3, 5, 1],
    "popularity": [0, 3, 12, 120, 60, 5, 4, 100, 1, 0],
    "rank_a": [None, 1, 10, 2, None, None, 5, None, 4, None],
    "rank_b": [3, None, 11, 1, None, None, None, 2, 20, None],
    "prefix_a": [0, 4, 2, 1, 1, -1, 3, 2, 2, 0],
    "prefix_b": [2, 1, 3, 4, 0, 2, 0, 4, 3, 1],
}, schema_overrides={"rank_a": pl.Int32, "rank_b": pl.Int32})


def ndcg(rank: int) -> float:
    return 1.0 / np.log2(rank + 1)


def test_bucket_names_and_edges():
    assert failures.labels(failures.POPULARITY_EDGES, 0) == ["0", "1-4", "5-9", "10-19", "20-49", "50-99", "100+"]
    assert failures.labels(failures.HISTORY_EDGES, 1) == ["1-4", "5-9", "10-19", "20-49", "50+"]
    got = failures.bucket(np.array([0, 1, 4, 5, 19, 20, 99, 100, 5000]), failures.POPULARITY_EDGES, 0)
    assert got.tolist() == ["0", "1-4", "1-4", "5-9", "10-19", "20-49", "50-99", "100+", "100+"]


def test_shared_prefix_counts_leading_codes_only():
    a = np.array([[1, 2, 3, 0], [1, 2, 4, 0], [5, 2, 3, 0], [1, 2, 3, 0], [1, 9, 3, 0]])
    b = np.array([[1, 2, 3, 1], [1, 2, 3, 0], [1, 2, 3, 0], [1, 2, 3, 0], [1, 2, 3, 0]])
    assert failures.shared_prefix(a, b).tolist() == [3, 2, 0, 4, 1]  # a later match after a mismatch does not count


def test_failure_buckets_on_a_hand_made_case():
    f = failures.analyze(HAND, ["a", "b"], n_codes=4, k=10)
    assert f["outcomes"] == {"a": "a", "b": "b", "a_hit_b_miss": 4, "a_miss_b_hit": 2, "both_hit": 1, "both_miss": 3}
    # A misses users 0, 4, 5, 7, 9 (top-1 prefixes 0, 1, empty, 2, 0); B misses 1, 2, 4, 5, 6, 8, 9
    assert f["top1_shared_prefix_on_misses"] == {"a": {"misses": 5, "no_prediction": 1, "shared": [2, 1, 1, 0]},
                                                 "b": {"misses": 7, "no_prediction": 0, "shared": [2, 2, 1, 2]}}

    def table(rows):
        return {r["bucket"]: (r["users"], r["models"]["a"]["recall@10"], r["models"]["b"]["recall@10"]) for r in rows}

    assert table(f["overall"]) == {"all": (10, 0.5, 0.3)}
    # popularity 0: users 0, 9 | 1-4: 1, 6, 8 | 5-9: 5 | 10-19: 2 | 20-49: none (left out) | 50-99: 4 | 100+: 3, 7
    assert table(f["by_popularity"]) == {"0": (2, 0.0, 0.5), "1-4": (3, 1.0, 0.0), "5-9": (1, 0.0, 0.0),
                                         "10-19": (1, 1.0, 0.0), "50-99": (1, 0.0, 0.0), "100+": (2, 0.5, 1.0)}
    assert [r["bucket"] for r in f["by_popularity"]] == ["0", "1-4", "5-9", "10-19", "50-99", "100+"]
    # history 1-4: users 0, 1, 7, 9 | 5-9: 2, 5, 8 | 10-19: 3 | 20-49: 6 | 50+: 4
    assert table(f["by_history_length"]) == {"1-4": (4, 0.25, 0.5), "5-9": (3, pytest.approx(2 / 3), 0.0),
                                             "10-19": (1, 1.0, 1.0), "20-49": (1, 1.0, 0.0), "50+": (1, 0.0, 0.0)}
    assert table(f["by_cold"]) == {"cold": (2, 0.0, 0.5), "warm": (8, 0.625, 0.25)}
    ndcg_rows = {r["bucket"]: r["models"] for r in f["by_popularity"]}
    assert ndcg_rows["1-4"]["a"]["ndcg@10"] == pytest.approx((ndcg(1) + ndcg(5) + ndcg(4)) / 3)
    assert ndcg_rows["100+"]["a"]["ndcg@10"] == pytest.approx(ndcg(2) / 2)
    assert ndcg_rows["0"]["b"]["ndcg@10"] == pytest.approx(ndcg(3) / 2)


def test_one_model_gets_its_buckets_without_a_pair():
    f = failures.analyze(HAND, ["b"], n_codes=4, k=2)
    assert "outcomes" not in f and f["overall"][0]["models"]["b"]["recall@2"] == pytest.approx(0.2)  # users 3 and 7


# ---- end to end ---------------------------------------------------------------------------------
def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    run = build_toy_run(tmp_path_factory.mktemp("analysis") / "toy")
    for model in ("tiger", "sasrec-ce"):
        res = invoke("evaluate", "--out", str(run), f"model={model}", "bootstrap=0")
        assert res.exit_code == 0, res.output
    return run


@pytest.fixture(scope="module")
def analysed(toy) -> Path:
    res = invoke("analyze", str(toy), "--users", "5", "--seed", "3", "map_items=60", "top_codes=4")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "tiger hit & sasrec-ce miss" in res.output
    return toy / "analysis"


def test_analyze_writes_every_file_with_the_sampled_users(toy, analysed):
    for name in ("cases.json", "cases.md", "failures.json", "failures.md", "failures.png", "codes.json", "codes.md",
                 "code_map.png", "manifest.json"):
        assert (analysed / name).is_file(), name
    cases = json.loads((analysed / "cases.json").read_text())
    want = sample_users(RunFolder(toy).table("test"), 5, 3)["user_id"].to_list()
    assert [c["user_id"] for c in cases["users"]] == want
    md = (analysed / "cases.md").read_text()
    assert all(f"## User {u}" in md for u in want)


def test_case_study_hits_agree_with_ranks_parquet(toy, analysed):
    cases = json.loads((analysed / "cases.json").read_text())["users"]
    for model in ("tiger", "sasrec-ce"):
        ranks = read_ranks(RunFolder(toy).model_dir(model) / "ranks.parquet")
        rank_of = dict(zip(ranks["user_id"].to_list(), ranks["rank"].to_list()))
        for c in cases:
            got = c["models"][model]
            listed = [it["rank"] for it in got["items"] if it["hit"]]
            r = rank_of[c["user_id"]]
            assert got["evaluated_rank"] == r and got["consistent"]
            assert listed == ([r] if r is not None and r <= 10 else [])
            for it in got["items"]:  # the shared prefix is the target's, in full on a hit
                n = 0
                while n < len(it["sid"]) and it["sid"][n] == c["target"]["sid"][n]:
                    n += 1
                assert it["shared"] == n and (n == len(it["sid"])) == it["hit"]


def test_failure_figures_match_the_evaluation(toy, analysed):
    f = json.loads((analysed / "failures.json").read_text())
    users = RunFolder(toy).table("test").height
    o = f["outcomes"]
    assert (o["a"], o["b"]) == ("tiger", "sasrec-ce")
    assert o["a_hit_b_miss"] + o["a_miss_b_hit"] + o["both_hit"] + o["both_miss"] == f["users"] == users
    for model in ("tiger", "sasrec-ce"):
        metrics = json.loads((RunFolder(toy).model_dir(model) / "metrics.json").read_text())["metrics"]
        assert f["overall"][0]["models"][model]["recall@10"] == pytest.approx(metrics["recall@10"])
        assert f["overall"][0]["models"][model]["ndcg@10"] == pytest.approx(metrics["ndcg@10"])
        assert sum(r["users"] for r in f["by_popularity"]) == users
        d = f["top1_shared_prefix_on_misses"][model]
        assert sum(d["shared"]) + d["no_prediction"] == d["misses"]
    codes = json.loads((analysed / "codes.json").read_text())
    assert [len(r["prefix"]) for r in codes["levels"]["2"]] == [2] * 4 and codes["map"] == "code_map.png"


def test_analyze_is_reused_and_names_bad_input(toy, analysed, tmp_path):
    before = (analysed / "manifest.json").stat().st_mtime_ns
    res = invoke("analyze", str(toy), "--users", "5", "--seed", "3", "map_items=60", "top_codes=4")
    assert res.exit_code == 0 and (analysed / "manifest.json").stat().st_mtime_ns == before  # reused, not rewritten
    res = invoke("analyze", str(toy), "--models", "tiger,nosuch")
    assert res.exit_code == 2 and "unknown model 'nosuch'" in res.output and "sasrec-ce, tiger" in res.output
    res = invoke("analyze", str(toy), "--split", "val", "--out", str(tmp_path / "a"))
    assert res.exit_code == 2 and "no ranks on val" in res.output and "semid evaluate --out" in res.output
    assert "split=val" in res.output
    res = invoke("analyze", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "not a run folder" in res.output


def test_history_removed_protocol_reads_its_own_column(toy, analysed, tmp_path):
    res = invoke("analyze", str(toy), "--users", "4", "--out", str(tmp_path / "r"), "protocol=removed", "map_items=0")
    assert res.exit_code == 0, res.output + repr(res.exception)
    f = json.loads((tmp_path / "r" / "failures.json").read_text())
    for model in ("tiger", "sasrec-ce"):
        removed = json.loads((RunFolder(toy).model_dir(model) / "metrics.json").read_text())["metrics_history_removed"]
        assert f["overall"][0]["models"][model]["recall@10"] == pytest.approx(removed["recall@10"])
    cases = json.loads((tmp_path / "r" / "cases.json").read_text())["users"]
    for c in cases:
        history = {h["item_id"] for h in c["history"]}
        for got in c["models"].values():
            assert got["consistent"] and not history & {it["item_id"] for it in got["items"]}
    assert not (tmp_path / "r" / "code_map.png").exists()
