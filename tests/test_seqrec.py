"""Item-ID baselines: model invariants, losses, pop/KNN against numpy, toy runs end to end."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from semid.cli import app
from semid.core.errors import ConfigError
from semid.core.run import RunFolder
from semid.data.config import PrepareConfig
from semid.evaluate.stage import EvaluateConfig
from semid.evaluate.stage import run as evaluate
from semid.models import knn, pop, registry
from semid.models import stage as model_stage
from semid.models.common import RankOptions
from semid.models.seqrec import config as C
from semid.models.seqrec import data, losses
from semid.models.seqrec import model as models
from semid.sequences import IGNORE, sequences

NETWORKS = {"sasrec": models.SASRec, "gru4rec": models.GRU4Rec, "bert4rec": models.BERT4Rec}

TINY = dict(max_items=8, batch_size=32, max_epochs=2, patience=2, val_users=50, val_every=1, threads=1)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A prepared toy run folder with random item embeddings (no encoder download)."""
    from semid.data import prepare

    out = tmp_path_factory.mktemp("seqrec") / "toy"
    prepare.run(PrepareConfig(dataset="toy"), out)
    n = RunFolder(out).table("items").height
    (out / "embed").mkdir()
    np.save(out / "embed" / "item_embeddings.npy", np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32))
    return out, n


def _model(kind: str, n_items: int = 20) -> torch.nn.Module:
    return NETWORKS[kind](models.ModelArgs(n_items=n_items, d_model=16, layers=2, heads=2, dropout=0.0, max_len=10))


def _ranker(kind: str, folder, **opts):
    spec = registry.get(kind)
    return spec.ranker(folder, spec.config, RankOptions(**opts))


@pytest.mark.parametrize("kind", ["sasrec", "gru4rec"])
def test_causal_models_do_not_see_the_future(kind):
    torch.manual_seed(0)
    model = _model(kind).eval()
    x = torch.tensor([[3, 7, 1, 9, 2, 5]])
    y = x.clone()
    y[0, 4:] = torch.tensor([11, 12])
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[0, :4], b[0, :4])
    assert not torch.allclose(a[0, 4:], b[0, 4:])


def test_bert4rec_is_bidirectional_and_ignores_padding():
    torch.manual_seed(0)
    model = _model("bert4rec").eval()
    x = torch.tensor([[3, 7, 1, 9, 0, 0]])
    y = torch.tensor([[3, 7, 1, 4, 0, 0]])
    with torch.no_grad():
        assert not torch.allclose(model(x)[0, 0], model(y)[0, 0])  # an earlier position sees a later item
        torch.testing.assert_close(model(x)[0, :4], model(x[:, :4])[0])  # padding changes nothing
    assert models.scores(model, model(x)).shape == (1, 6, 20)


def test_bce_and_ce_losses_differ_and_match_closed_forms():
    torch.manual_seed(0)
    model = _model("sasrec").eval()
    x = torch.tensor([[3, 7, 1, 0]])
    y = torch.tensor([[6, 0, 4, IGNORE]])
    h = model(x)[0, :3]
    logits = models.scores(model, h)
    ce = losses.sequence_loss(model, x, y, "ce")
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(logits, y[0, :3]))
    torch.manual_seed(1)
    bce = losses.sequence_loss(model, x, y, "bce")
    torch.manual_seed(1)
    neg = losses.sample_negatives(y[0, :3], 20)
    w = model.item_weights()
    pos_l, neg_l = (h * w[y[0, :3]]).sum(-1), (h * w[neg]).sum(-1)
    expected = -torch.nn.functional.logsigmoid(pos_l).mean() - torch.nn.functional.logsigmoid(-neg_l).mean()
    torch.testing.assert_close(bce, expected)
    assert not torch.isclose(ce, bce)
    assert C.SASRecConfig(loss="bce").name == "sasrec-bce" and C.SASRecConfig().name == "sasrec-ce"
    assert C.SASRecConfig(loss="bce").dropout == 0.5 and C.SASRecConfig(loss="bce", dropout=0.1).dropout == 0.1


def test_bce_negatives_never_equal_the_positive():
    """Each negative is uniform over the other items: never the target, never padding, seeded."""
    target = torch.arange(4).repeat(5000)
    torch.manual_seed(0)
    neg = losses.sample_negatives(target, 4)
    assert (neg != target).all() and ((neg >= 0) & (neg < 4)).all()
    pairs = torch.bincount(target * 4 + neg, minlength=16).view(4, 4).double() / 5000
    assert (pairs.diagonal() == 0).all()
    off = pairs[~torch.eye(4, dtype=torch.bool)]
    assert (off - 1 / 3).abs().max() < 0.03  # each other item about a third of the time
    torch.manual_seed(0)
    assert torch.equal(losses.sample_negatives(target, 4), neg)
    assert (losses.sample_negatives(torch.tensor([0, 1, 1, 0]), 2) == torch.tensor([1, 0, 0, 1])).all()
    with pytest.raises(ValueError, match="at least 2 items"):
        losses.sample_negatives(torch.tensor([0]), 1)


def test_bce_loss_uses_the_other_item_in_a_two_item_catalogue():
    """With two items the only negative of a target is the other item: the loss is exact, whatever the seed."""
    torch.manual_seed(0)
    model = _model("sasrec", n_items=2).eval()
    x = torch.tensor([[1, 2, 1, 2, 2, 1, 1, 2]])
    y = torch.tensor([[1, 0, 1, 1, 0, 0, 1, 0]])
    h = model(x)[0]
    w = model.item_weights()
    pos_l, neg_l = (h * w[y[0]]).sum(-1), (h * w[1 - y[0]]).sum(-1)
    expected = -torch.nn.functional.logsigmoid(pos_l).mean() - torch.nn.functional.logsigmoid(-neg_l).mean()
    for seed in range(5):
        torch.manual_seed(seed)
        torch.testing.assert_close(losses.sequence_loss(model, x, y, "bce"), expected)


def test_batches_cover_every_target_once_and_mask_in_cloze():
    seqs = [np.arange(5), np.arange(30) + 5]
    causal = data.train_batches(seqs, cloze=False, max_items=8, batch_size=2)
    assert causal.num_targets == 4 + 29
    got = [b for b in causal]
    assert sum(int((b["y"] != IGNORE).sum()) for b in got) == 33
    for b in got:  # the label at a position is the input at the next one
        x, y = b["x"].numpy(), b["y"].numpy()
        inner = (y[:, :-1] != IGNORE) & (x[:, 1:] > 0)
        assert (y[:, :-1][inner] + 1 == x[:, 1:][inner]).all()
    cloze = data.train_batches(seqs, cloze=True, max_items=8, batch_size=8, mask_token=99, mask_prob=0.3)
    for b in cloze:
        x, y = b["x"].numpy(), b["y"].numpy()
        assert ((y != IGNORE) == (x == 99)).all() and ((x == 99).sum(1) >= 1).all()
    x, last = data.history_batch([np.array([1, 2, 3]), np.array([4])], 8, mask_token=99)
    assert x.tolist() == [[2, 3, 4, 99], [5, 99, 0, 0]] and last.tolist() == [3, 1]


def test_pop_ranking_equals_numpy_count(toy_run):
    out, n = toy_run
    folder = model_stage.train("pop", pop.PopConfig(), out)
    rank, info = _ranker("pop", folder, top_k=10)
    items, invalid = rank([np.array([1, 2]), np.array([3])], np.array([0, 1]))
    seqs = sequences(RunFolder(out).table("train"))
    count = np.bincount(np.concatenate(seqs), minlength=n)
    assert invalid is None and json.loads((folder / "config.json").read_text())["params"] == 0
    assert (items[0] == items[1]).all()
    assert (count[items[0]] == np.sort(count)[::-1][:10]).all() and len(set(items[0])) == 10
    assert pop.top_items(np.array([1, 3, 3, 0]), 3).tolist() == [1, 2, 0]


def test_knn_equals_brute_force_cosine(toy_run):
    out, n = toy_run
    folder = model_stage.train("knn", knn.KNNConfig(max_items=2, decay=0.5), out)
    rank, info = _ranker("knn", folder, top_k=5)
    emb = np.load(out / "embed" / "item_embeddings.npy").astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    hists = [np.array([4, 9, 2]), np.array([7])]
    items, _ = rank(hists, np.array([0, 1]))
    for h, got in zip(hists, items):
        q = emb[h[-1]] + (0.5 * emb[h[-2]] if len(h) > 1 else 0)
        cos = emb @ q / np.linalg.norm(q)
        assert got.tolist() == np.argsort(-cos, kind="stable")[:5].tolist()
    top = knn.rank(hists, torch.from_numpy(knn.normalise(emb)), 5, torch.tensor([1.0, 0.5]), exclude_history=True).numpy()
    assert not set(top[0]) & {4, 9, 2} and 7 not in top[1]


@pytest.mark.parametrize("kind,extra", [("sasrec", {"loss": "ce"}), ("sasrec", {"loss": "bce"}),
                                        ("gru4rec", {}), ("bert4rec", {})])
def test_each_neural_model_trains_and_ranks(toy_run, kind, extra):
    out, n = toy_run
    cfg = registry.get(kind).config(**TINY, **extra)
    folder = model_stage.train(kind, cfg, out)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["kind"] == kind and meta["params"] > 0 and meta["training"]["epochs"] >= 1
    assert (folder / "checkpoints" / "best.ckpt").is_file() and (folder / "logs" / "metrics.csv").is_file()
    rank, info = _ranker(kind, folder, top_k=7, batch_users=3)
    hists = [np.array([1, 2, 3]), np.arange(30) % n, np.array([5])]
    items, invalid = rank(hists, np.arange(3))
    assert items.shape == (3, 7) and invalid is None and items.dtype == np.int64
    assert ((items >= 0) & (items < n)).all() and all(len(set(r)) == 7 for r in items)
    assert info["loss"] == {"sasrec": extra.get("loss"), "gru4rec": "ce", "bert4rec": "cloze"}[kind]
    assert info["max_items"] == 8


def test_model_folder_evaluates_and_cli_reuses(toy_run):
    out, _ = toy_run
    res = CliRunner().invoke(app, ["train", "sasrec", "--out", str(out), "max_items=8", "max_epochs=4", "lr=0.01",
                                   "val_users=50", "threads=1", "name=sasrec-cli"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    m = json.loads(evaluate(EvaluateConfig(model="sasrec-cli", bootstrap=20), out).read_text())
    assert m["kind"] == "sasrec" and m["model_info"]["params"] > 0
    assert m["metrics"]["recall@10"] > 0.05  # random is about 10 / 295
    # resume continues from last.ckpt: one more epoch, counted on from the checkpoint's step
    folder = out / "models" / "sasrec-cli"
    first = json.loads((folder / "config.json").read_text())["training"]
    assert first["epochs"] == 4 and first["steps"] % 4 == 0 and first["steps"] > 0
    res = CliRunner().invoke(app, ["train", "sasrec", "--out", str(out), "max_items=8", "max_epochs=5", "lr=0.01",
                                   "val_users=50", "threads=1", "name=sasrec-cli", "--resume"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    after = json.loads((folder / "config.json").read_text())["training"]
    assert after["epochs"] == 5 and after["steps"] == first["steps"] // 4 * 5
    # the resumed run logs from the checkpoint on (at most its last step again), not from scratch at epoch 0
    resumed = pl.read_csv(next((folder / "logs").glob("resume-*/metrics.csv")))
    assert resumed["step"].min() >= first["steps"] - 1 and resumed["epoch"].min() >= 3 and resumed["epoch"].max() == 4


def test_bad_config_key_is_a_clear_error(tmp_path):
    from semid.core import config as cfgmod

    with pytest.raises(ConfigError, match="unknown config key 'dmodel'"):
        cfgmod.load(C.SASRecConfig, None, ["dmodel=32"])
    with pytest.raises(ConfigError, match="bad value for 'loss'"):
        cfgmod.load(C.SASRecConfig, None, ["loss=hinge"])
    res = CliRunner().invoke(app, ["train", "gru4rec", "--out", str(tmp_path), "hidden=8"])
    assert res.exit_code == 2 and "unknown config key 'hidden'" in res.output


def test_training_on_a_crowded_cpu_warns_with_the_thread_count_that_fits(toy_run, monkeypatch, caplog):
    from semid.core import threads

    out, _ = toy_run
    monkeypatch.setattr(threads, "busy_elsewhere", lambda window=0.25: 1.2)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    cfg = registry.get("gru4rec").config(**{**TINY, "threads": 2, "max_epochs": 1}, name="gru4rec-crowded")
    with caplog.at_level("WARNING", logger="semid"):
        model_stage.train("gru4rec", cfg, out)
    assert any("keep 1.2 of 2 CPU cores busy" in r.getMessage() and "threads=1 in `semid train`" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    cfg = registry.get("gru4rec").config(**{**TINY, "threads": 1, "max_epochs": 1}, name="gru4rec-alone")
    with caplog.at_level("WARNING", logger="semid"):
        model_stage.train("gru4rec", cfg, out)
    assert not any("CPU cores busy" in r.getMessage() for r in caplog.records)


def test_without_a_progress_bar_each_validation_is_one_log_line(toy_run, monkeypatch, caplog):
    """A cell trained in a worker process (or logged to a file) shows no bar: each validation logs
    its epoch, Recall@10 and the best so far, which are the model's own logged numbers."""
    out, _ = toy_run
    monkeypatch.setenv("SEMID_PROGRESS", "0")
    cfg = registry.get("gru4rec").config(**{**TINY, "max_epochs": 4, "val_every": 2, "patience": 10}, name="gru4rec-logged")
    with caplog.at_level("INFO", logger="semid"):
        folder = model_stage.train("gru4rec", cfg, out)
    lines = [r.getMessage() for r in caplog.records if "validation Recall@10" in r.getMessage() and "epoch" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["gru4rec-logged: epoch 2/4", "gru4rec-logged: epoch 4/4"]
    assert "min more if it runs to epoch 4" in lines[0] and "min more" not in lines[1]
    logged = pl.read_csv(folder / "logs" / "metrics.csv").drop_nulls("val/recall@10")["val/recall@10"].to_list()
    assert [f"Recall@10 {v:.4f}" in line for v, line in zip(logged, lines)] == [True, True]
    assert f"(best {max(logged):.4f})" in lines[1]
    monkeypatch.setenv("SEMID_PROGRESS", "1")  # with a bar the bar shows it
    caplog.clear()
    with caplog.at_level("INFO", logger="semid"):
        model_stage.train("gru4rec", cfg.model_copy(update={"name": "gru4rec-bar"}), out)
    assert not any("validation Recall@10" in r.getMessage() and "epoch" in r.getMessage() for r in caplog.records)
