"""TIGER: the shared causal encoder pass is exact, batches are right, and the toy pipeline runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from semid import checkpoints
from semid.cli import app
from semid.core.log import log
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.evaluate import results
from semid.generative import beam, coldstart
from semid.generative.tokens import BOS, SIDTokenizer, history_tokens
from semid.models import registry
from semid.models import stage as model_stage
from semid.models.common import RankOptions
from semid.models.tiger import data
from semid.models.tiger.config import PRESETS, TigerConfig
from semid.models.tiger.model import ModelArgs, Tiger
from semid.sequences import chunks, windows

REPO = Path(__file__).resolve().parents[1]


def _tok(n_items=30, k=5, seed=0) -> SIDTokenizer:
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, k, n_items), rng.integers(0, k, n_items), np.arange(n_items) // (k * k)], 1)
    codes[:, 1] = np.arange(n_items) % k
    return SIDTokenizer.from_codes(codes, codebook_size=k)


def _model(tok, mask="causal", users=0, recency=False, encoder_input="tokens") -> Tiger:
    torch.manual_seed(0)
    args = ModelArgs(vocab_size=tok.vocab_size, id_length=tok.id_length,
                     level_ranges=[tok.level_range(i) for i in range(tok.id_length)], d_model=16, n_heads=2,
                     head_dim=8, d_ff=32, encoder_layers=2, decoder_layers=2, dropout=0.0, attn_dropout=0.0,
                     max_items=6, encoder_mask=mask, user_buckets=users, recency_bias=recency,
                     positions="relative" if recency else "absolute", encoder_input=encoder_input)
    model = Tiger(args).double().eval()
    if recency:  # learned relative biases: random, so that a wrong distance would change the logits
        with torch.no_grad():
            model.recency.normal_()
            model.item_bias.normal_()
    return model


@pytest.mark.parametrize("encoder_input", ["tokens", "items"])
@pytest.mark.parametrize("users,recency", [(0, False), (4, False), (0, True), (4, True)])
def test_one_causal_pass_equals_encoding_each_window_alone(users, recency, encoder_input):
    """The design claim: one block-causal encoder pass serves every sliding window exactly (also
    with the learned recency and item-distance biases, and with one encoder position per item)."""
    tok = _tok()
    model = _model(tok, users=users, recency=recency, encoder_input=encoder_input)
    rows = [np.array([3, 7, 1, 9, 2, 5, 11]), np.array([4, 8, 0])]
    u = np.array([1, 3])
    batch = data.collate_causal(rows, u, tok.item_tokens.numpy())
    with torch.no_grad():
        logits = model(batch.enc, batch.dec_in, batch.limit, batch.users if users else None)
        for b, row in enumerate(rows):
            for t in range(1, len(row)):
                hist = history_tokens([row[:t]], tok.item_tokens.numpy())
                alone = model(hist, batch.dec_in[b:b + 1, t - 1:t], torch.tensor([[t]]),
                              batch.users[b:b + 1] if users else None)
                torch.testing.assert_close(logits[b, t - 1], alone[0, 0])


@pytest.mark.parametrize("recency", [False, True])
def test_item_input_encodes_one_position_per_item_from_its_summed_tokens(recency):
    """encoder_input="items": the memory holds one position per history item, padded items are
    masked out (a padded history gives the same logits as the unpadded one), and an item's input
    is the sum of its tokens' embeddings (two items with the same tokens in another order, which
    a token encoder tells apart, look alike to this one)."""
    tok = _tok()
    model = _model(tok, recency=recency, encoder_input="items")
    item_tokens = tok.item_tokens.numpy()
    hist = [np.array([3, 7, 1]), np.array([4, 8, 0, 9, 2])]
    enc = history_tokens(hist, item_tokens)
    with torch.no_grad():
        memory, item, pad = model.encode(enc)
        assert memory.shape[1] == 5 and item[0].tolist() == [0, 1, 2, 3, 4]
        assert pad.tolist() == [[False] * 3 + [True] * 2, [False] * 5]
        dec = torch.full((1, 1, 1), BOS)
        short = model(history_tokens(hist[:1], item_tokens), dec, torch.tensor([[3]]))
        torch.testing.assert_close(model(enc[:1], dec, torch.tensor([[3]])), short)
        # permuting the tokens of every history item: the same sums, the same memory
        swapped = enc.view(2, 5, tok.id_length).flip(-1).reshape(2, -1)
        torch.testing.assert_close(model.encode(swapped)[0], memory)
        as_tokens = _model(tok, recency=recency)
        assert not torch.allclose(as_tokens.encode(swapped)[0], as_tokens.encode(enc)[0])
    # every parameter gets a gradient (DDP refuses a model with parameters that never get one)
    batch = data.collate_causal(hist, np.array([0, 1]), item_tokens)
    model(batch.enc, batch.dec_in, batch.limit).logsumexp(-1).mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_windows_chunks_and_batches():
    seqs = [np.arange(5), np.arange(30)]
    ch = chunks(seqs, 21, 1)
    assert [len(c) for c in ch] == [5, 21, 10]
    # every target position is trained exactly once
    assert sum(len(c) - 1 for c in ch) == sum(len(s) - 1 for s in seqs)
    hist, targets = windows(seqs, max_items=20)
    assert len(hist) == 4 + 29 and targets[0] == 1 and len(hist[-1]) == 20 and hist[-1][-1] == 28
    tok = _tok(n_items=40)
    for mode in ("causal", "bidirectional"):
        ds = data.train_batches(seqs, np.array([0, 1]), tok.item_tokens.numpy(), mode=mode, max_items=20,
                                batch_size=8, seed=0)
        assert ds.num_examples == 33
        batches = list(ds)
        assert len(batches) == len(ds) and sum(b.num_targets for b in batches) == 33
        b = batches[0]
        assert b.labels.shape[-1] == tok.id_length and (b.dec_in[..., 0] == 1).all()


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_training_loss_with_label_smoothing_in_closed_form(eps):
    """TIGER's training loss over the targets of a batch: (1 - eps) × the cross-entropy of the true
    token + eps × the mean of -log p over the tokens of the position's level (the others are -inf;
    padding positions ignored): finite, and the plain loss at eps = 0."""
    from semid.models.tiger.train import TigerModule

    tok = _tok()
    model = _model(tok).float()
    module = TigerModule(TigerConfig(preset="tiny", label_smoothing=eps), model.args, None)
    module.model = model
    batch = data.collate_causal([np.array([3, 7, 1, 9]), np.array([4, 8])], np.array([0, 1]), tok.item_tokens.numpy())
    loss, n, _ = module.step_loss(batch)
    logp = torch.log_softmax(model(batch.enc, batch.dec_in, batch.limit, None).float(), -1)
    keep = batch.labels >= 0
    ce = -logp.gather(-1, batch.labels.clamp(min=0)[..., None]).squeeze(-1)
    level = torch.isfinite(logp)
    width = torch.tensor([hi - lo for lo, hi in (tok.level_range(i) for i in range(tok.id_length))])
    assert (level.sum(-1) == width).all()  # each position scores its level's codes only
    want = ((1 - eps) * ce - eps * torch.where(level, logp, 0.0).sum(-1) / width)[keep].mean()
    assert n == 3 + 1 and keep.sum() == n * tok.id_length
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, want)


def test_presets_fill_unset_fields_only():
    cfg = TigerConfig(preset="paper", lr=0.005)
    assert cfg.encoder_layers == 4 and cfg.d_ff == 1024 and cfg.n_heads == 6 and cfg.lr == 0.005
    assert cfg.max_steps == PRESETS["paper"]["max_steps"]
    assert TigerConfig().preset == "cpu"
    # cpu-long is the cpu network run 80 epochs to the end of its schedule, nothing else changed
    long, short = TigerConfig(preset="cpu-long").model_dump(), TigerConfig(preset="cpu").model_dump()
    assert {k: long[k] for k in long if long[k] != short[k]} == {"preset": "cpu-long", "max_epochs": 80, "patience": 50}
    # cpu-wide is the point tiger-long-test scored: the cpu network at width 128 for 60 epochs
    wide = TigerConfig(preset="cpu-wide").model_dump()
    assert {k: wide[k] for k in wide if wide[k] != short[k]} == {
        "preset": "cpu-wide", "d_model": 128, "head_dim": 32, "d_ff": 512, "max_epochs": 60, "patience": 50}
    recipe = yaml.safe_load((REPO / "configs" / "experiments" / "tiger-long-test.yaml").read_text())
    point = {k.rsplit(".", 1)[-1]: v for k, v in recipe["experiment"]["points"][0].items()}
    assert point == {k: wide[k] for k in point} and recipe["compare"]["budget"]["val_users"] == wide["val_users"]
    with pytest.raises(ValueError, match="nonsense"):
        TigerConfig(nonsense=1)


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def rerank(folder, out, **opts) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The model folder's ranker on every test user, in this process: (items, invalid flags, targets)."""
    spec = registry.get(json.loads((folder / "config.json").read_text())["kind"])
    test = RunFolder(out).table("test")
    rank, _ = spec.ranker(folder, spec.config, RankOptions(**opts))
    items, invalid = rank(test["history"].to_list(), test["user_id"].to_numpy().astype(np.int64))
    return items, invalid, test["target"].to_numpy()


def test_toy_end_to_end(tmp_path, monkeypatch):
    """prepare → embed → IDs → TIGER → evaluate on the toy dataset through `semid run`."""
    t0 = time.perf_counter()
    runner = CliRunner()
    out = tmp_path / "toy"
    res = runner.invoke(app, ["run", "--dataset", "toy", "--out", str(out), "ids.method=rqkmeans",
                              "ids.codebook_size=16", "ids.tsne_sample=0", "tiger.preset=tiny", "evaluate.bootstrap=100"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert f"run folder: {out}" in res.output
    model = out / "models" / "tiger"
    for name in ("model.safetensors", "config.json", "sid_codes.safetensors", "manifest.json", "metrics.json",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (model / name).is_file(), name
    m = json.loads((model / "metrics.json").read_text())
    assert m["split"] == "test" and m["protocol"]["beam_size"] == 20
    assert m["metrics"]["recall@10"] > 0.05  # random would be about 10 / 295
    assert set(m["ci95"]) >= {"recall@10", "ndcg@10", "mrr"}
    assert "invalid_rate@10" not in m["metrics"]  # constrained decoding returns only items
    # the printed table: this run's row with this run's numbers, and no paper rows (the toy set has none)
    lines = res.output.splitlines()
    head = cells(next(line for line in lines if line.startswith("| dataset | model |")))
    rows = [cells(line) for line in lines if line.startswith("| toy |")]
    assert len(rows) == 1 and rows[0][:2] == ["toy", "tiger"] and len(rows[0]) == len(head)
    shown = {h: v for h, v in zip(head, rows[0]) if h in m["metrics"]}
    assert {"recall@10", "ndcg@10"} <= set(shown)
    assert shown == {h: f"{m['metrics'][h]:.4f}" for h in shown}
    assert "(paper)" not in res.output
    # its record holds every stage's time from the manifests the stages wrote, all from this one command
    rec = json.loads(results.record(model / "metrics.json", root=tmp_path / "results", setting="pipeline", allow_dirty=True).read_text())
    walls = {s: json.loads((out / f).read_text())["wall_time_s"] for s, f in
             [("prepare", "data/manifest.json"), ("embed", "embed/manifest.json"), ("train", "models/tiger/manifest.json")]}
    assert walls.items() <= rec["stages_wall_s"].items() and rec["stages_wall_s"]["evaluate"] == m["rank_wall_s"]
    assert set(rec["stages_wall_s"]) == {"prepare", "embed", "ids", "ids analyze", "train", "evaluate"}
    assert rec["stages_total_s"] == pytest.approx(sum(rec["stages_wall_s"].values()), abs=0.1)
    assert rec["stages_total_s"] > walls["train"]
    assert len(rec["stages_commands"]) == 1  # every stage by the one `semid run` (under pytest: its argv)
    # a dataset with paper numbers lists each of them under this run's row
    papers = [r for r in json.loads(results.reference_path().read_text())["records"] if r["dataset"] == "beauty"]
    beauty = [cells(line) for line in results.run_table(model / "metrics.json", "beauty").splitlines()[2:] if line.startswith("|")]
    assert beauty[0][:2] == ["toy", "tiger"] and len(papers) > 0
    assert [row[1] for row in beauty[1:]] == [f"{r['model']} (paper)" for r in papers]
    # free decoding reports the invalid-ID rate: the share of top-10 slots whose generated ID is no item's
    res = runner.invoke(app, ["evaluate", "--out", str(out), "constrained=false", "bootstrap=0"])
    assert res.exit_code == 0, res.output
    free = json.loads((model / "metrics-free.json").read_text())
    with threads(json.loads((model / "config.json").read_text())["config"]["threads"]):
        items, invalid, targets = rerank(model, out, top_k=20, beam_size=20, constrained=False)
    assert np.array_equal(invalid, items < 0)
    assert free["metrics"]["invalid_rate@10"] == pytest.approx(invalid[:, :10].mean(), abs=1e-12)
    assert free["metrics"]["recall@10"] == pytest.approx((items[:, :10] == targets[:, None]).any(1).mean(), abs=1e-12)
    # cold-start mode passes its settings to the match (every third item taken as unseen)
    built = []
    monkeypatch.setattr(beam, "ColdStart", lambda *a, **k: built.append(a) or coldstart.ColdStart(*a, **k))
    n_items = RunFolder(out).table("items").height
    items, _, _ = rerank(model, out, top_k=10, beam_size=10, cold_items=np.arange(n_items) % 3 == 0,
                         cold_start_eps=0.5, cold_start_codes=1)
    assert [a[2:] for a in built] == [(0.5, 1)] and items.shape[1] == 10
    # resume continues from last.ckpt: one more epoch, counted on from the checkpoint's step
    first = json.loads((model / "config.json").read_text())["training"]
    ckpt = checkpoints.readable_checkpoint(model / "checkpoints" / "last.ckpt")
    per_epoch = first["steps"] // 3
    assert first["epochs"] == 3 and first["steps"] == 3 * per_epoch == ckpt["global_step"] and per_epoch > 0
    res = runner.invoke(app, ["train", "tiger", "--out", str(out), "preset=tiny", "max_epochs=4", "--resume"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    after = json.loads((model / "config.json").read_text())["training"]
    assert after["epochs"] == 4 and after["steps"] == 4 * per_epoch
    logs = list((model / "logs").glob("resume-*/metrics.csv"))
    assert len(logs) == 1
    resumed = pl.read_csv(logs[0])
    # it logs from the checkpoint's last step on (epochs 3 and 4); a run that started over would log from step 19, epoch 1
    assert resumed["step"].min() >= first["steps"] - 1 and resumed["epoch"].min() >= 2 and resumed["epoch"].max() == 3
    assert pl.read_csv(model / "logs" / "metrics.csv")["step"].max() < first["steps"]
    # the item-vector encoder input trains, is read back from its folder and ranks valid items; the
    # default input stays out of a model's identity, so folders trained before the option existed stay up to date
    spec = registry.get("tiger")
    run = RunFolder(out)
    assert "encoder_input" not in model_stage._identity(spec, spec.config(preset="tiny"), run, None)[0]
    assert model_stage._identity(spec, spec.config(preset="tiny", encoder_input="items"), run, None)[0]["encoder_input"] == "items"
    res = runner.invoke(app, ["train", "tiger", "--out", str(out), "preset=tiny", "encoder_input=items", "name=tiger-items"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    items_folder = out / "models" / "tiger-items"
    assert json.loads((items_folder / "config.json").read_text())["args"]["encoder_input"] == "items"
    items, _, targets = rerank(items_folder, out, top_k=10, beam_size=10)
    assert (items >= 0).all() and (items[:, :, None] != items[:, None, :]).sum((1, 2)).min() == 90  # 10 distinct items each
    assert (items == targets[:, None]).any(1).mean() > 0.05
    # about 6 s on an idle 2-core CPU; not asserted, as shared CI machines vary tenfold
    log.info("toy end to end: %.1f s", time.perf_counter() - t0)
