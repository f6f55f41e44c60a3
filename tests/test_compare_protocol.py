"""The reviewed comparison protocol: a grid chosen on validation, seeds, both protocols, paired
tests, per-user ranks and provenance recorded by the code."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core import artifacts
from semid.core.config import ConfigError
from semid.core.errors import DataError
from semid.evaluate import results, stats
from semid.evaluate import stage as ev_stage
from semid.experiments import compare, table
from semid.models.seqrec.config import SASRecConfig

TOY = ["--dataset", "toy", "ids.method=rqkmeans", "ids.codebook_size=16", "ids.tsne_sample=0", "tiger.preset=tiny",
       "compare.bootstrap=50", "compare.permutations=500", "compare.threads=1"]


def test_remove_history_on_a_hand_made_list():
    items = np.array([[5, 1, 7, 2, 9, 3], [4, -1, 8, 0, 6, 1]])
    got = ev_stage.remove_history(items, [[1, 2], [8, 8, 4]], 3)
    assert got.tolist() == [[5, 7, 9], [0, 6, 1]]
    short = ev_stage.remove_history(np.array([[1, 2, 3]]), [[1, 2]], 3)
    assert short.tolist() == [[3, -1, -1]]


def test_per_user_metric_from_one_based_ranks():
    import polars as pl
    r = pl.Series([1, None, 3, 11])
    assert ev_stage.per_user_metric(r, "recall@10").tolist() == [1, 0, 1, 0]
    assert ev_stage.per_user_metric(r, "ndcg@10") == pytest.approx([1, 0, 1 / np.log2(4), 0])
    assert ev_stage.per_user_metric(r, "mrr") == pytest.approx([1, 0, 1 / 3, 1 / 11])
    with pytest.raises(ValueError, match="unknown per-user metric"):
        ev_stage.per_user_metric(r, "auc")


def test_grid_points_name_their_folders():
    base = SASRecConfig(lr=0.002, dropout=0.2)
    points = compare.grid(base, {"lr": ["x0.5", "x1", 0.01], "dropout": [0.2]})
    assert [(s, c.lr, c.dropout) for s, c in points] == [("-lr0.5x", 0.001, 0.2), ("", 0.002, 0.2), ("-lr0.01", 0.01, 0.2)]
    assert compare.grid(base, {}) == [("", base)]
    with pytest.raises(ConfigError, match="unknown key"):
        compare.grid(base, {"learning_rate": [1]})
    with pytest.raises(ConfigError, match="neither a value nor a factor"):
        compare.grid(base, {"lr": ["xx"]})


def test_budget_reaches_trained_rows_only_and_settings_win():
    cfg = compare.CompareConfig(budget={"max_epochs": 7}, settings={"gru4rec": {"max_epochs": 3}})
    assert compare.model_config("sasrec-ce", cfg, "rqvae-3x256")[1].max_epochs == 7
    assert compare.model_config("gru4rec", cfg, "rqvae-3x256")[1].max_epochs == 3
    assert not hasattr(compare.model_config("pop", cfg, "rqvae-3x256")[1], "max_epochs")
    with pytest.raises(ValueError, match="baselines"):
        compare.CompareConfig(models=["pop"], baselines=["tiger"])


def test_toy_comparison_tunes_on_validation_and_tests_on_paired_users(tmp_path):
    out = tmp_path / "toy"
    res = CliRunner().invoke(app, ["compare", "--out", str(out), *TOY, "compare.models=[pop,sasrec-ce]",
                                   "compare.seeds=[0,1]", "compare.tune={lr: [x1, x3]}", "compare.baselines=[pop]",
                                   "compare.budget={max_epochs: 2}", "--record", str(tmp_path / "results"), "--allow-dirty"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    models = out / "models"
    comp = json.loads((out / "compare" / "comparison.json").read_text())
    rows = {r["model"]: r for r in comp["rows"]}
    sas = rows["sasrec-ce"]
    # the grid point with the better validation Recall@10 was chosen, from metrics-val.json, never from test
    val = {p: json.loads((models / p / "metrics-val.json").read_text())["metrics"]["recall@10"] for p in ("sasrec-ce", "sasrec-ce-lr3x")}
    best = max(val, key=lambda p: (val[p], p == "sasrec-ce"))
    assert sas["config_name"] == best and sas["tuned"]["scores"] == pytest.approx(val, abs=1e-5)
    loser = ({"sasrec-ce", "sasrec-ce-lr3x"} - {best}).pop()
    assert not (models / loser / "metrics.json").exists()  # the test split is scored for the chosen point only
    assert sas["seeds"] == [0, 1] and (models / f"{best}-s1" / "metrics.json").is_file() and rows["pop"]["seeds"] == [0]
    # the mean over seeds is the mean of the seeds' own metric files, and the ranks reproduce them
    per_seed = [json.loads((models / n / "metrics.json").read_text()) for n in (best, f"{best}-s1")]
    for protocol, key in (("history kept", "metrics"), ("history removed", "metrics_history_removed")):
        assert sas[protocol]["mean"]["recall@10"] == pytest.approx(np.mean([m[key]["recall@10"] for m in per_seed]))
    for name, m in zip((best, f"{best}-s1"), per_seed):
        ranks = ev_stage.read_ranks(models / name / "ranks.parquet")
        assert ranks.height == m["users"]
        assert ev_stage.per_user_metric(ranks["rank"], "ndcg@10").mean() == pytest.approx(m["metrics"]["ndcg@10"])
        assert ev_stage.per_user_metric(ranks["rank_history_removed"], "recall@10").mean() == pytest.approx(
            m["metrics_history_removed"]["recall@10"])
    # paired tests: Δ is the difference of the rows' means; Holm never lowers a p-value
    tests = comp["tests"]
    assert len(tests) == 4 and {t["baseline"] for t in tests} == {"pop"}
    t = next(t for t in tests if t["protocol"] == "history kept" and t["metric"] == "recall@10")
    assert t["delta"] == pytest.approx(sas["history kept"]["mean"]["recall@10"] - rows["pop"]["history kept"]["mean"]["recall@10"])
    assert all(t["p_holm"] >= t["p_permutation"] for t in tests)
    assert t["verdict"] == stats.verdict(t["delta"], t["ci95"], t["p_holm"])
    md = (out / "compare" / "comparison.md").read_text()
    assert "## History removed" in md and "## Paired tests" in md and "| sasrec-ce | pop | recall@10 |" in md
    # records: provenance written by the code
    rec = json.loads((tmp_path / "results" / "toy" / "sasrec-ce.json").read_text())
    for key in results.PROVENANCE:
        assert rec.get(key) is not None, key
    assert rec["git"]["commit"] and rec["hardware"]["cpus"] >= 1 and rec["per_seed"][1]["seed"] == 1
    assert rec["dirty"] == comp["git"]["dirty"]
    # a second call reuses every cell: nothing is retrained
    weights = models / best / "model.safetensors"
    before = weights.stat().st_mtime_ns
    res = CliRunner().invoke(app, ["compare", "--out", str(out), *TOY, "compare.models=[pop,sasrec-ce]", "compare.seeds=[0,1]",
                                   "compare.tune={lr: [x1, x3]}", "compare.baselines=[pop]", "compare.budget={max_epochs: 2}"])
    assert res.exit_code == 0, res.output
    assert weights.stat().st_mtime_ns == before
    # a cell killed midway (no manifest, its config in pending.json, a last.ckpt) is continued, not refused
    from semid.models import stage as model_stage
    cfg = compare.model_config("sasrec-ce", compare.CompareConfig(threads=1), "rqkmeans-3x16")[1]
    cfg = cfg.model_copy(update={"name": best, "lr": float(json.loads((models / best / "config.json").read_text())["config"]["lr"]),
                                 "max_epochs": 2})
    folder = models / best
    assert not model_stage.killed_run_of("sasrec", cfg, out)  # finished
    config, inputs, _ = model_stage._identity(model_stage.registry.get("sasrec"), cfg, model_stage.RunFolder(out), None)
    (folder / "manifest.json").unlink()
    artifacts.write_json(folder / model_stage.PENDING, {"config": config, "inputs": inputs})
    assert model_stage.killed_run_of("sasrec", cfg, out)
    assert not model_stage.killed_run_of("sasrec", cfg.model_copy(update={"dropout": 0.5}), out)  # another config


def test_a_record_from_a_dirty_tree_is_refused_unless_marked(tmp_path):
    m = {"model": "pop", "dataset": "toy", "split": "test", "users": 2, "metrics": {"recall@10": 0.5}, "ci95": {},
         "protocol": {}, "model_info": {"seed": 0}, "git": {"commit": "abc", "dirty": True}}
    f = tmp_path / "metrics.json"
    artifacts.write_json(f, m)
    with pytest.raises(DataError, match="uncommitted changes"):
        results.record(f, root=tmp_path / "results")
    rec = json.loads(results.record(f, root=tmp_path / "results", allow_dirty=True).read_text())
    assert rec["dirty"] is True
    artifacts.write_json(f, m | {"git": {"commit": None, "dirty": None}})
    with pytest.raises(DataError, match="commit is unknown"):
        results.record(f, root=tmp_path / "results")
    artifacts.write_json(f, m | {"git": {"commit": "abc", "dirty": False}})
    assert json.loads(results.record(f, root=tmp_path / "results").read_text())["dirty"] is False


def test_provenance_is_detected():
    prov = artifacts.provenance({"a": 1})
    assert prov["hardware"]["cpus"] >= 1 and prov["hardware"]["cpu_model"]
    assert prov["versions"]["python"] and prov["config_hash"] == artifacts.fingerprint_value({"a": 1})
    assert len(prov["git"]["commit"] or "x" * 40) == 40


def test_rank_study_refuses_results_from_a_dirty_tree_before_any_work(tmp_path, monkeypatch):
    from semid.rank import study
    from semid.rank.config import StudyConfig
    monkeypatch.setattr(artifacts, "git_state", lambda: {"commit": "a" * 40, "dirty": True})
    with pytest.raises(DataError, match="uncommitted changes"):
        study.run(StudyConfig(), tmp_path / "nothing-here", results_root=tmp_path / "results")
    assert not (tmp_path / "nothing-here").exists()


def test_dirty_means_code_or_config_changed_not_results_or_docs(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for name in ("src/a.py", "results/x/r.json", "docs/d.md", "README.md", "configs/c.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")

    def state():
        artifacts._git.cache_clear()
        return artifacts._git(str(tmp_path))

    commit, dirty = state()
    assert len(commit) == 40 and dirty is False
    for name in ("results/x/r.json", "docs/d.md", "README.md"):  # what runs and people write
        (tmp_path / name).write_text("2\n")
    (tmp_path / "results" / "new.json").write_text("{}")  # untracked
    assert state() == (commit, False)
    (tmp_path / "configs/c.yaml").write_text("2\n")
    assert state() == (commit, True)


def test_the_grid_point_is_chosen_by_validation_and_a_tie_keeps_the_rows_own(tmp_path):
    def cell(name, recall):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({"metrics": {"recall@10": recall}}))
        return compare.Cell("sasrec-ce", "sasrec", SASRecConfig(name=name), "val", {"metrics_file": str(f)})

    low, own, high = cell("sasrec-ce-lr0.5x", 0.09), cell("sasrec-ce", 0.09), cell("sasrec-ce-lr2x", 0.10)
    assert compare.choose([low, own, high], "sasrec-ce", "recall@10") is high
    assert compare.choose([low, own], "sasrec-ce", "recall@10") is own  # a tie: the row's own configuration
    assert compare.choose([low, cell("sasrec-ce-lr2x", 0.09)], "sasrec-ce", "recall@10") is low  # then the earlier point
    with pytest.raises(ValueError, match="not a metric"):
        compare.choose([low, own], "sasrec-ce", "auc")


@pytest.mark.parametrize(("split", "reported"), [
    ({"protocol": "leave-one-out per user (last → test, second to last → validation)"}, False),
    ({"protocol": "leave-one-out per user (last → test, second to last → validation)", "held_out_items": 3}, True),
    ({"protocol": "global temporal split", "test_cut": 10}, True),
])
def test_cold_targets_are_reported_only_where_the_split_was_made_for_cold_start(tmp_path, split, reported):
    """A leave-one-out split has a few targets no training row holds (an item whose every event is
    some user's last); testing on them is no cold-start study and would only dilute the correction."""
    import polars as pl

    from semid.experiments import table

    data = tmp_path / "data"
    data.mkdir()
    artifacts.write_json(data / "stats.json", {"split": split})
    pl.DataFrame({"user_id": [0, 1, 2], "cold": [False, True, False]}).write_parquet(data / "test.parquet")
    table._cold_users.cache_clear()
    users = table._cold_users(str(tmp_path), "test")
    assert (users.to_list() if users is not None else None) == ([1] if reported else None)


def test_a_paired_test_refuses_two_rows_that_scored_different_users(tmp_path):
    """As many users is not the same users: the rows are compared user by user, so a row scored on
    users 0-99 and one scored on users 100-199 is an error, not a test of unrelated pairs."""
    def cell(name: str, users: range) -> compare.Cell:
        folder = tmp_path / name
        folder.mkdir()
        ranks = [1 if u % 3 == 0 else None for u in users]
        pl.DataFrame({"user_id": list(users), "target": [0] * len(users), "rank": ranks, "rank_history_removed": ranks},
                     schema_overrides={"rank": pl.Int32, "rank_history_removed": pl.Int32}).write_parquet(folder / "ranks.parquet")
        cfg = SASRecConfig(name=name)
        return compare.Cell(name, "sasrec", cfg, "test", result={"metrics_file": str(folder / "metrics.json")})

    cfg = compare.CompareConfig(models=["sasrec-ce"], bootstrap=0, permutations=100)
    a, b, c = cell("a", range(100)), cell("b", range(100)), cell("c", range(100, 200))
    tests = table.paired_tests([a, b], cfg, pairs=[("a", "b")])
    assert len(tests) == 4 and all(t["delta"] == 0 for t in tests)  # the same users: compared (and equal)
    assert not any(t["seeds_paired"] for t in tests)  # two trained models: their seeds are drawn apart
    # a row that scored a's very folder (another evaluation setting of one model): seeds paired
    again = compare.Cell("a-again", "sasrec", SASRecConfig(name="a"), "test", result=dict(a.result))
    assert all(t["seeds_paired"] for t in table.paired_tests([a, again], cfg, pairs=[("a-again", "a")]))
    with pytest.raises(ValueError, match="scored different users"):
        table.paired_tests([a, c], cfg, pairs=[("a", "c")])
