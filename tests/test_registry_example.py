"""The worked example of docs/architecture.md: a new model is one package plus one registry line.

A first-order Markov recommender (the items that most often followed the user's last item in the
training sequences) is written here as a throwaway package, registered, trained on ``toy``,
evaluated and compared through the registry, with no other file of semid touched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semid.checkpoints import save_weights
from semid.core.config import ModelConfig
from semid.core.run import RunFolder, read_model_folder
from semid.data import prepare
from semid.data.config import PrepareConfig
from semid.evaluate import metrics as M
from semid.evaluate.stage import EvaluateConfig
from semid.evaluate.stage import run as evaluate
from semid.experiments import compare
from semid.ids.config import IdsConfig
from semid.models import registry
from semid.models import stage as model_stage
from semid.models.common import RankOptions, batched_ranker
from semid.sequences import sequences


# ---- the package: a config, train and ranker ------------------------------------------------------
class MarkovConfig(ModelConfig):
    """Items that most often followed the last history item in training."""

    name: str = "markov"


def train(cfg: MarkovConfig, run: RunFolder, out: Path, **_: Any) -> dict[str, Any]:
    n = run.table("items").height
    follows = np.zeros((n, n), dtype=np.float32)
    for s in sequences(run.table("train")):
        np.add.at(follows, (s[:-1], s[1:]), 1.0)
    save_weights({"follows": torch.from_numpy(follows)}, out)
    return {"params": 0, "training": {"train_wall_s": 0.0, "epochs": 0, "best_val_recall@10": None}}


def ranker(folder: Path, config: type[MarkovConfig], opts: RankOptions):
    _, weights = read_model_folder(folder)
    follows = weights["follows"].numpy()
    top = lambda hists: np.argsort(-follows[[h[-1] for h in hists]], axis=1, kind="stable")[:, :opts.top_k]
    return batched_ranker(top, opts), {"max_items": 1}


# ---- the registry line ------------------------------------------------------------------------------
SPEC = registry.ModelSpec("markov", MarkovConfig, train, ranker, "First-order Markov chain over items.",
                          {"markov": registry.Row()}, trained=False)


@pytest.fixture()
def registered(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, SPEC.kind, SPEC)
    return SPEC


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> RunFolder:
    out = tmp_path_factory.mktemp("example") / "toy"
    prepare.run(PrepareConfig(dataset="toy"), out)
    return RunFolder(out)


def test_a_new_model_trains_evaluates_and_compares_through_the_registry(registered, toy):
    folder = model_stage.train("markov", MarkovConfig(), toy)
    assert json.loads((folder / "config.json").read_text())["kind"] == "markov"
    m = json.loads(evaluate(EvaluateConfig(model="markov", bootstrap=0), toy).read_text())
    # the same numbers from a direct computation over the test split
    test, train_seqs, n = toy.table("test"), sequences(toy.table("train")), toy.table("items").height
    follows = np.zeros((n, n))
    for s in train_seqs:
        np.add.at(follows, (s[:-1], s[1:]), 1.0)
    last = [h[-1] for h in test["history"].to_list()]
    expected = np.argsort(-follows[last], axis=1, kind="stable")[:, :20]
    assert m["metrics"]["recall@10"] == pytest.approx(M.recall_at(M.ranks(expected, test["target"].to_numpy()), 10))
    assert m["kind"] == "markov" and m["metrics"]["recall@10"] > 0
    table = compare.run(compare.CompareConfig(models=["markov", "pop"], bootstrap=0), toy.root, IdsConfig())
    rows = json.loads((table / "comparison.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["markov", "pop"]


def test_an_unregistered_kind_is_not_a_comparison_row():
    with pytest.raises(ValueError, match="unknown model"):
        compare.CompareConfig(models=["markov"])
