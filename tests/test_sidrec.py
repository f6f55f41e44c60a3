"""SID-GRU / SID-BERT4Rec: beam search equals exhaustive scoring, padding invariance, masks, configs,
and both models end to end on the toy dataset."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from semid.cli import app
from semid.core import config as cfgmod
from semid.core.errors import ConfigError
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.experiments import curves
from semid.generative.beam import beam_search
from semid.generative.tokens import PAD, SIDTokenizer, history_tokens
from semid.generative.trie import PrefixTrie
from semid.models import registry
from semid.models.common import RankOptions
from semid.models.sidrec.config import SIDBert4RecConfig, SIDGRUConfig
from semid.models.sidrec.data import train_rows
from semid.models.sidrec.model import SIDGRU, SIDArgs, SIDBert4Rec, SIDEnsemble, build
from semid.sequences import cloze_mask

KINDS = ["sid-gru", "sid-bert4rec"]
NETWORKS = {"sid-gru": SIDGRU, "sid-bert4rec": SIDBert4Rec}


def item_tokens_3d(hist, item_tokens):
    return history_tokens(hist, item_tokens, flat=False)


def tiny_tokenizer(seed: int = 0) -> SIDTokenizer:
    """14 items with 2 levels of 3 codes and a dedup code (some prefixes shared)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=(14, 2))
    dedup = np.zeros(14, dtype=np.int64)
    seen: dict[tuple, int] = {}
    for i, c in enumerate(map(tuple, codes)):
        dedup[i] = seen.get(c, 0)
        seen[c] = dedup[i] + 1
    return SIDTokenizer.from_codes(np.column_stack([codes, dedup]), codebook_size=3)


def tiny_model(kind: str, tok: SIDTokenizer, seed: int = 0):
    torch.manual_seed(seed)
    args = SIDArgs(vocab_size=tok.vocab_size, level_ranges=[tok.level_range(i) for i in range(tok.id_length)],
                   d_model=16, d_ff=32, dropout=0.0, max_items=6, n_heads=2, layers=2)
    model = NETWORKS[kind](args).eval()
    with torch.no_grad():  # larger weights than the init's so that scores are spread out
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tied", [True, False])
def test_beam_search_equals_exhaustive_scoring(kind, tied):
    tok = tiny_tokenizer()
    model = tiny_model(kind, tok)
    if not tied:
        args = SIDArgs(**{**model.args.to_dict(), "tied": False})
        torch.manual_seed(1)
        model = NETWORKS[kind](args).eval()
    hist = [np.array([1, 4, 2]), np.array([7]), np.array([3, 3, 9, 0, 12])]
    x = item_tokens_3d(hist, tok.item_tokens.numpy())
    res = beam_search(model.start(x), len(hist), tok, trie=PrefixTrie(tok), beam_size=tok.num_items, top_k=tok.num_items)
    with torch.no_grad():
        u = model.user(x)  # [B, d]
        for b in range(len(hist)):
            logits = model.heads(u[b].expand(tok.num_items, -1), tok.item_tokens)
            score = sum(torch.log_softmax(lg, -1)[torch.arange(tok.num_items), tok.item_tokens[:, lvl] - tok.level_range(lvl)[0]]
                        for lvl, lg in enumerate(logits))
            best = torch.argsort(score, descending=True)
            assert res.items[b].tolist() == best.tolist()
            assert torch.allclose(res.scores[b], score[best], atol=1e-5)
    assert sorted(res.items[0].tolist()) == list(range(tok.num_items))  # only valid items, each once


def test_ensemble_beam_search_ranks_by_the_members_mean_log_likelihood():
    tok = tiny_tokenizer()
    members = [tiny_model("sid-gru", tok, seed=s) for s in (0, 1, 2)]
    ens = build(SIDGRU, SIDArgs(**{**members[0].args.to_dict(), "members": 3})).eval()
    assert isinstance(ens, SIDEnsemble) and isinstance(build(SIDGRU, members[0].args), SIDGRU)
    ens.load_state_dict({f"members.{m}.{k}": v for m, net in enumerate(members) for k, v in net.state_dict().items()})
    hist = [np.array([1, 4, 2]), np.array([7]), np.array([3, 3, 9, 0, 12])]
    x = item_tokens_3d(hist, tok.item_tokens.numpy())
    res = beam_search(ens.start(x), len(hist), tok, trie=PrefixTrie(tok), beam_size=tok.num_items, top_k=tok.num_items)
    alone = [beam_search(net.start(x), len(hist), tok, trie=PrefixTrie(tok), beam_size=tok.num_items,
                         top_k=tok.num_items) for net in members]
    with torch.no_grad():
        for b in range(len(hist)):
            per_member = []
            for net in members:
                logits = net.heads(net.user(x)[b].expand(tok.num_items, -1), tok.item_tokens)
                per_member.append(sum(torch.log_softmax(lg, -1)[torch.arange(tok.num_items),
                                                                tok.item_tokens[:, lvl] - tok.level_range(lvl)[0]]
                                      for lvl, lg in enumerate(logits)))
            score = torch.stack(per_member).mean(0)
            best = torch.argsort(score, descending=True)
            assert res.items[b].tolist() == best.tolist()
            assert torch.allclose(res.scores[b], score[best], atol=1e-5)
    assert any(not torch.equal(res.items, a.items) for a in alone)  # the members disagree: the mean is no copy of one
    rows = torch.tensor([2, 0])  # selecting users selects them in every member
    sel = beam_search(ens.start(x).select(rows), 2, tok, trie=PrefixTrie(tok), beam_size=tok.num_items, top_k=5)
    assert torch.equal(sel.items, res.items[rows, :5])


@pytest.mark.parametrize("kind", KINDS)
def test_user_state_is_unchanged_by_padding_and_batch_neighbours(kind):
    tok = tiny_tokenizer()
    model = tiny_model(kind, tok)
    item_tokens = tok.item_tokens.numpy()
    alone = model.user(item_tokens_3d([np.array([5, 1])], item_tokens))
    x = item_tokens_3d([np.array([5, 1]), np.array([2, 3, 4, 6, 8, 10])], item_tokens)  # row 0 padded by 4 items
    padded = model.user(x)[:1]
    wider = torch.cat([x, torch.full((2, 3, tok.id_length), PAD)], 1)  # and by 3 more
    assert torch.allclose(alone, padded, atol=1e-5)
    assert torch.allclose(alone, model.user(wider)[:1], atol=1e-5)
    assert not torch.allclose(alone, model.user(item_tokens_3d([np.array([1, 5])], item_tokens)), atol=1e-3)


def test_bert4rec_masked_slot_ignores_its_own_tokens():
    tok = tiny_tokenizer()
    model = tiny_model("sid-bert4rec", tok)
    x = item_tokens_3d([np.array([5, 1, 7])], tok.item_tokens.numpy())
    masked = torch.tensor([[False, False, True]])
    other = x.clone()
    other[0, 2] = tok.item_tokens[11]
    assert torch.allclose(model.hidden(x, masked)[0, 2], model.hidden(other, masked)[0, 2], atol=1e-6)


def test_masks_targets_and_batches():
    rng = np.random.default_rng(0)
    m = cloze_mask(np.array([3, 1, 5]), 5, 0.0, rng, always_last=True)
    assert m.tolist() == [[False, False, True, False, False], [True] + [False] * 4, [False] * 4 + [True]]
    m = cloze_mask(np.full(2000, 5), 6, 0.3, rng, always_last=True)
    assert not m[:, 5].any() and m[:, 4].all() and abs(m[:, :4].mean() - 0.3) < 0.02
    tok = tiny_tokenizer()
    x = item_tokens_3d([np.array([1, 2, 3]), np.array([4])], tok.item_tokens.numpy())
    model = tiny_model("sid-gru", tok)
    h, tgt = model.predict(x, torch.zeros(x.shape[:2], dtype=torch.bool))
    assert h.shape == (2, 16)  # items 1 → 2 and 2 → 3 of row 0; row 1 has no next item
    assert torch.equal(tgt, tok.item_tokens[[2, 3]])
    seqs = [np.arange(i % 9 + 2) for i in range(50)]
    rows = train_rows(seqs, tok.item_tokens.numpy(), max_items=4, batch_size=8, seed=0, mask_prob=0.2)
    assert rows.num_targets == sum(len(s) - 1 for s in seqs)
    got = list(rows)
    assert sum(len(b.tokens) for b in got) == len(rows.rows) and all(len(r) <= 5 for r in rows.rows)
    assert all(b.masked.shape == b.tokens.shape[:2] and b.masked.any(1).all() for b in got)


def test_label_smoothing_is_over_each_levels_codes():
    """(1 - eps) × the cross-entropy + eps × the mean of -log p over the level's codes, per level;
    eps = 0 is the plain loss, and the forward is what training calls."""
    tok = tiny_tokenizer()
    model = tiny_model("sid-gru", tok).eval()
    x = item_tokens_3d([np.array([1, 2, 3]), np.array([4, 5])], tok.item_tokens.numpy())
    h, tgt = model(x, torch.zeros(x.shape[:2], dtype=torch.bool))
    assert torch.equal(tgt, tok.item_tokens[[2, 3, 5]])
    plain, per_plain = model.heads.nll(h, tgt)
    smooth, per = model.heads.nll(h, tgt, 0.3)
    for lvl, logits in enumerate(model.heads(h, tgt)):
        logp = torch.log_softmax(logits, -1)
        ce = -logp.gather(1, (tgt[:, lvl] - model.heads.ranges[lvl][0])[:, None]).squeeze(1)
        torch.testing.assert_close(per_plain[lvl], ce.mean())
        torch.testing.assert_close(per[lvl], (0.7 * ce - 0.3 * logp.mean(1)).mean())
    assert torch.isclose(plain, torch.stack(per_plain).sum()) and not torch.isclose(plain, smooth)
    with pytest.raises(ConfigError, match="label_smoothing"):
        cfgmod.load(SIDGRUConfig, overrides=["label_smoothing=1.0"])


def test_bad_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown config key 'hidden'.*SIDGRUConfig"):
        cfgmod.load(SIDGRUConfig, overrides=["hidden=64"])
    with pytest.raises(ConfigError, match="n_heads"):
        cfgmod.load(SIDBert4RecConfig, overrides=["d_model=30", "n_heads=4"])
    with pytest.raises(ConfigError, match="mask_prob"):
        cfgmod.load(SIDBert4RecConfig, overrides=["mask_prob=1.5"])
    assert SIDGRUConfig().name == "sid-gru" and SIDBert4RecConfig().name == "sid-bert4rec"
    with pytest.raises(ConfigError, match="members=3 .* devices=1"):
        cfgmod.load(SIDGRUConfig, overrides=["members=3", "devices=2"])
    with pytest.raises(ConfigError, match="members"):
        cfgmod.load(SIDGRUConfig, overrides=["members=0"])


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sidrec") / "toy"
    runner = CliRunner()
    for args in (["prepare", "--dataset", "toy"], ["embed"],
                 ["ids", "train", "method=rqkmeans", "codebook_size=16", "tsne_sample=0"]):
        res = runner.invoke(app, [*args, "--out", str(out)])
        assert res.exit_code == 0, res.output + repr(res.exception)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_toy_end_to_end(toy_run, kind):
    spec = registry.get(kind)
    runner = CliRunner()
    cmd = name = kind
    opts = ["d_model=16", "d_ff=32", "max_epochs=2", "val_users=100", "threads=1", "lr=0.01"]
    res = runner.invoke(app, ["train", cmd, "--out", str(toy_run), *opts])
    assert res.exit_code == 0, res.output + repr(res.exception)
    folder = toy_run / "models" / name
    for f in ("model.safetensors", "sid_codes.safetensors", "config.json", "manifest.json",
              "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (folder / f).is_file(), f
    meta = json.loads((folder / "config.json").read_text())
    assert meta["kind"] == kind and meta["params"] > 0 and meta["training"]["epochs"] >= 1
    assert {"train_wall_s", "best_val_recall@10"} <= set(meta["training"])

    rank, info = spec.ranker(folder, spec.config, RankOptions(beam_size=20, top_k=10, batch_users=64))
    assert info["loss"] == "per-level CE" and info["max_items"] == 20
    hist = [np.array([1, 2, 3]), np.array([7]), np.arange(40) % 300]
    items, invalid = rank(hist, np.arange(3))
    n_items = meta["tokenizer"]["num_items"]
    assert items.shape == (3, 10) and invalid is None
    assert ((items >= 0) & (items < n_items)).all() and all(len(set(r)) == 10 for r in items)
    free, flags = spec.ranker(folder, spec.config, RankOptions(beam_size=20, top_k=10, constrained=False,
                                                              batch_users=64))[0](hist, np.arange(3))
    assert flags.shape == (3, 10) and np.array_equal(flags, free < 0)

    res = runner.invoke(app, ["evaluate", "--out", str(toy_run), f"model={name}", "bootstrap=0"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    m = json.loads((folder / "metrics.json").read_text())
    assert m["kind"] == kind and m["users"] == RunFolder(toy_run).table("test").height
    # the recorded numbers are those of the model's own ranking of every test user
    test = RunFolder(toy_run).table("test")
    with threads(1):
        items, _ = spec.ranker(folder, spec.config, RankOptions(beam_size=20, top_k=20))[0](
            test["history"].to_list(), test["user_id"].to_numpy().astype(np.int64))
    hit = items[:, :10] == test["target"].to_numpy()[:, None]
    assert m["metrics"]["recall@10"] == pytest.approx(hit.any(1).mean(), abs=1e-12)
    assert m["metrics"]["ndcg@10"] == pytest.approx((hit / np.log2(np.arange(2, 12))).sum(1).mean(), abs=1e-12)
    # resume continues from last.ckpt: one more epoch, counted on from the checkpoint's step
    first = json.loads((folder / "config.json").read_text())["training"]
    assert first["epochs"] == 2 and first["steps"] % 2 == 0 and first["steps"] > 0
    more = [o if not o.startswith("max_epochs") else "max_epochs=3" for o in opts]
    res = runner.invoke(app, ["train", cmd, "--out", str(toy_run), *more, "--resume"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    after = json.loads((folder / "config.json").read_text())["training"]
    assert after["epochs"] == 3 and after["steps"] == first["steps"] // 2 * 3
    # the resumed run logs from the checkpoint on (at most its last step again), not from scratch at epoch 0
    resumed = pl.read_csv(next((folder / "logs").glob("resume-*/metrics.csv")))
    assert resumed["step"].min() >= first["steps"] - 1 and resumed["epoch"].min() >= 1 and resumed["epoch"].max() == 2


def test_toy_ensemble_trains_members_then_decodes_them_together(toy_run):
    spec = registry.get("sid-gru")
    runner = CliRunner()
    opts = ["d_model=16", "d_ff=32", "max_epochs=2", "val_users=100", "threads=1", "lr=0.01", "members=2",
            "name=sid-gru-ens", "seed=1"]
    res = runner.invoke(app, ["train", "sid-gru", "--out", str(toy_run), *opts])
    assert res.exit_code == 0, res.output + repr(res.exception)
    folder = toy_run / "models" / "sid-gru-ens"
    meta = json.loads((folder / "config.json").read_text())
    members = meta["training"]["members"]
    assert meta["args"]["members"] == 2 and len(members) == 2
    # the folder's cost and length are the members' together; its validation score is the ensemble's own
    assert meta["training"]["epochs"] == 4 and meta["training"]["steps"] == sum(m["steps"] for m in members)
    assert meta["training"]["train_wall_s"] == pytest.approx(sum(m["train_wall_s"] for m in members), abs=0.2)
    assert 0 <= meta["training"]["best_val_recall@10"] <= 1
    weights = load_file(str(folder / "model.safetensors"))
    for m in (0, 1):
        sub = folder / f"member{m}"
        assert (sub / "checkpoints" / "last.ckpt").is_file() and (sub / "logs" / "metrics.csv").is_file()
        own = load_file(str(sub / "model.safetensors"))
        assert all(torch.equal(weights[f"members.{m}.{k}"], v) for k, v in own.items())
        assert json.loads((sub / "member.json").read_text())["training"] == members[m]
    # members 0 and 1 of seed 1 are seeds 2 and 3: not the same network twice
    key = "heads.codes.weight"
    assert not torch.equal(weights[f"members.0.{key}"], weights[f"members.1.{key}"])

    # its time-to-quality curve: the first member's validations, then the ensemble after every member
    c = curves.curve(folder)
    first = c["points"][:-1]
    assert len(first) >= 1 and all(p["minutes"] <= c["points"][-1]["minutes"] for p in first)
    assert c["points"][-1]["recall@10"] == meta["training"]["best_val_recall@10"]
    assert c["points"][-1]["minutes"] == pytest.approx(meta["training"]["train_wall_s"] / 60, abs=1e-3)

    rank, _ = spec.ranker(folder, spec.config, RankOptions(beam_size=20, top_k=10, batch_users=64))
    items, _ = rank([np.array([1, 2, 3]), np.array([7])], np.arange(2))
    n_items = meta["tokenizer"]["num_items"]
    assert ((items >= 0) & (items < n_items)).all() and all(len(set(r)) == 10 for r in items)

    # a killed ensemble resumes: finished members are kept, the unfinished one goes on from its checkpoint
    (folder / "member1" / "member.json").unlink()
    (folder / "manifest.json").unlink()
    kept = (folder / "member0" / "model.safetensors").stat().st_mtime_ns
    res = runner.invoke(app, ["train", "sid-gru", "--out", str(toy_run), *opts, "--resume"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (folder / "member0" / "model.safetensors").stat().st_mtime_ns == kept
    assert (folder / "member1" / "member.json").is_file()
    again = json.loads((folder / "config.json").read_text())["training"]
    assert again["members"][0] == members[0] and again["members"][1]["epochs"] == 2
