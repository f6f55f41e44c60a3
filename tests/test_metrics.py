"""Metrics: closed-form cases, agreement with scikit-learn, bootstrap, results tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from semid.evaluate import bootstrap, results
from semid.evaluate import metrics as M


def test_closed_form_values():
    ranked = np.array([[3, 1, 2, 0, 4],    # target 3 at rank 0
                       [0, 1, 2, 3, 4],    # target 2 at rank 2
                       [5, 6, 7, 8, 9],    # target 1 absent
                       [9, 8, 7, 6, -1]])  # target 6 at rank 3
    targets = np.array([3, 2, 1, 6])
    assert M.ranks(ranked, targets).tolist() == [0, 2, -1, 3]
    out = M.compute(ranked, targets, num_items=20, ks=(1, 3, 5))
    assert out["recall@1"] == pytest.approx(1 / 4)
    assert out["recall@3"] == pytest.approx(2 / 4)
    assert out["recall@5"] == pytest.approx(3 / 4)
    assert out["ndcg@1"] == pytest.approx(1 / 4)
    assert out["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert out["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(5)) / 4)
    assert out["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 4) / 4)
    assert out["coverage@1"] == pytest.approx(4 / 20)  # items 3, 0, 5, 9
    assert "invalid_rate@1" not in out


def test_coverage_and_invalid_rate():
    ranked = np.array([[3, -1, 2], [3, 4, -1]])
    invalid = ranked < 0
    out = M.compute(ranked, np.array([2, 9]), num_items=10, ks=(1, 3), invalid=invalid)
    assert out["coverage@1"] == pytest.approx(1 / 10)
    assert out["coverage@3"] == pytest.approx(3 / 10)
    assert out["invalid_rate@1"] == 0.0
    assert out["invalid_rate@3"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        M.compute(ranked, np.array([2, 9]), num_items=10, ks=(5,))


def test_recall_equals_hit_rate_and_empty_targets_never_hit():
    ranked = np.array([[-1, -1], [1, 2]])
    r = M.ranks(ranked, np.array([-1, 2]))
    assert r.tolist() == [-1, 1]  # a -1 target does not match empty slots
    assert M.recall_at(r, 2) == 0.5


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_users=st.integers(1, 30), n_items=st.integers(2, 40), k=st.integers(1, 40))
def test_ndcg_matches_sklearn(seed, n_users, n_items, k):
    rng = np.random.default_rng(seed)
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(float)  # no ties
    targets = rng.integers(0, n_items, n_users)
    truth = np.zeros((n_users, n_items))
    truth[np.arange(n_users), targets] = 1
    ranked = np.argsort(-scores, axis=1)
    ours = M.ndcg_at(M.ranks(ranked, targets), k)
    assert ours == pytest.approx(ndcg_score(truth, scores, k=k))


def test_bootstrap_interval_contains_mean_and_shrinks():
    rng = np.random.default_rng(0)
    small = {"recall@10": (rng.random(200) < 0.1).astype(float)}
    big = {"recall@10": (rng.random(20000) < 0.1).astype(float)}
    lo, hi = bootstrap.confidence_intervals(small, n_boot=300)["recall@10"]
    assert lo <= small["recall@10"].mean() <= hi
    lo2, hi2 = bootstrap.confidence_intervals(big, n_boot=300)["recall@10"]
    assert hi2 - lo2 < hi - lo
    # a constant metric has a zero-width interval
    assert bootstrap.confidence_intervals({"x": np.ones(50)}, n_boot=50)["x"] == [1.0, 1.0]


def test_results_record_and_table(tmp_path):
    metrics = {"model": "tiger", "dataset": "beauty", "split": "test", "users": 3,
               "metrics": {"recall@10": 0.05, "ndcg@10": 0.03, "mrr": 0.02},
               "metrics_history_removed": {"recall@10": 0.07, "ndcg@10": 0.04},
               "ci95": {"recall@10": [0.04, 0.06]}, "protocol": {"beam_size": 20},
               "model_info": {"preset": "cpu", "seed": 0}, "git": {"commit": "a" * 40, "dirty": False},
               "hardware": {"cpus": 2, "cpu_model": "Test CPU", "memory_gib": 4.0}, "train_wall_s": 100.0, "rank_wall_s": 5.0}
    mfile = tmp_path / "metrics.json"
    mfile.write_text(json.dumps(metrics))
    root = tmp_path / "results"
    root.mkdir()
    (root / "reference.json").write_text(json.dumps({"records": [
        {"dataset": "beauty", "model": "TIGER", "source": "paper T1", "metrics": {"recall@10": 0.0648}, "protocol": "history kept"},
        {"dataset": "beauty", "model": "SASRec", "source": "paper T1", "metrics": {"recall@10": 0.0605}, "protocol": "history removed"}]}))
    out = results.record(mfile, root=root)
    assert out == root / "beauty" / "tiger.json"
    rec = json.loads(out.read_text())
    assert rec["preset"] == "cpu" and rec["hardware"]["cpu_model"] == "Test CPU" and rec["train_wall_s"] == 100.0
    assert rec["eval_wall_s"] == 5.0 and rec["git"]["commit"] == "a" * 40 and rec["dirty"] is False
    text = results.table(results.load_records(root), results.load_reference(root))
    lines = text.splitlines()
    mine = next(line for line in lines if line.startswith("| beauty | tiger |"))
    cells = [c.strip() for c in mine.strip("|").split("|")]
    assert cells[:4] == ["beauty", "tiger", "cpu", "1"] and cells[6:8] == ["0.0500", "0.0300"]
    assert cells[-3:] == ["0.0700", "0.0400", "2 × Test CPU, 4.0 GiB, no GPU"]
    # each paper row sits under the protocol its paper used
    tiger = [c.strip() for c in next(x for x in lines if "TIGER (paper)" in x).strip("|").split("|")]
    sasrec = [c.strip() for c in next(x for x in lines if "SASRec (paper)" in x).strip("|").split("|")]
    assert tiger[6] == "0.0648" and tiger[-3] == "–"
    assert sasrec[6] == "–" and sasrec[-3] == "0.0605"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.START}\nold\n{results.END}\nrest\n")
    results.update_readme(readme, root)
    body = readme.read_text()
    assert "old" not in body and text in body and body.endswith("rest\n")


def test_readme_ranking_block_from_a_study_file(tmp_path):
    root = tmp_path / "results"
    (root / "office").mkdir(parents=True)
    summary = [{"representation": rep, "table_size": t, "history": h, "slice": sl, "rows": t, "auc": auc}
               for rep, t, auc in (("hash", 1024, 0.60), ("hash", 4096, 0.65), ("unigram", 768, 0.70))
               for h in (True, False) for sl in ("all", "cold")]
    study = {"dataset": "office", "records": [], "summary": summary,
             "claims": [{"claim": "SIDs beat hashing on cold items", "verdict": "confirmed"}]}
    (root / "office" / "rank_study.json").write_text(json.dumps(study))
    # a study file is not a retrieval record
    assert results.load_records(root) == []
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.START}\n{results.END}\nmid\n{results.RANK_START}\nOLD-BLOCK\n{results.RANK_END}\n")
    results.update_readme(readme, root)
    body = readme.read_text()
    assert "| office | hash | 4,096 | 0.6500 | 0.6500 | – |" in body  # the largest hash table
    assert "| office | unigram | 768 | 0.7000 |" in body
    assert "| office | SIDs beat hashing on cold items | confirmed |" in body and "OLD-BLOCK" not in body
