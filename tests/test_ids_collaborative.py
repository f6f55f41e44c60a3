"""``rqvae_cf``: Semantic IDs with collaborative signal (LETTER-style) and a code-diversity term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from semid.cli import app
from semid.core import artifacts
from semid.ids import collaborative as cf
from semid.ids.config import IdsConfig
from semid.ids.table import load_semantic_ids


def test_cooccurrence_counts_pairs_within_the_window():
    m = cf.cooccurrence([np.array([0, 1, 2]), np.array([2, 2, 3])], 4, window=1).toarray()
    expected = np.zeros((4, 4))
    for a, b in [(0, 1), (1, 2), (2, 3)]:  # (2, 2) is an item with itself: left out
        expected[a, b] += 1
        expected[b, a] += 1
    assert (m == expected).all()
    assert cf.cooccurrence([np.array([0, 1, 2])], 3, window=2).toarray()[0, 2] == 1


def test_ppmi_closed_form():
    counts = cf.cooccurrence([np.array([0, 1]), np.array([0, 1]), np.array([1, 2])], 3, window=1)
    # counts: (0,1) 2, (1,2) 1, symmetric; total 6; row sums 2, 3, 1
    got = cf.ppmi(counts).toarray()
    assert got[0, 1] == pytest.approx(math.log(2 * 6 / (2 * 3)))
    assert got[1, 2] == pytest.approx(math.log(1 * 6 / (3 * 1)))
    assert got[0, 2] == 0 and (got >= 0).all()


def _clustered_sequences(n_items: int, groups: int, rng: np.random.Generator, n: int = 400) -> list[np.ndarray]:
    """Sessions that only ever mix items of one group (item i belongs to group i % groups)."""
    out = []
    for _ in range(n):
        g = rng.integers(groups)
        members = np.arange(g, n_items, groups)
        out.append(rng.choice(members, size=6))
    return out


def test_collaborative_embeddings_separate_items_bought_together():
    rng = np.random.default_rng(0)
    emb, has = cf.cf_embeddings(_clustered_sequences(60, 3, rng), 60, dim=8, window=2, seed=0)
    assert has.all() and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    sim = emb @ emb.T
    same = np.equal.outer(np.arange(60) % 3, np.arange(60) % 3) & ~np.eye(60, dtype=bool)
    assert sim[same].mean() > 0.5 > sim[~same & ~np.eye(60, dtype=bool)].mean() + 0.3


def test_alignment_and_diversity_losses():
    torch.manual_seed(0)
    c = torch.randn(16, 4)
    assert cf.alignment_loss(c, c, 0.1) < cf.alignment_loss(c, c[torch.randperm(16)], 0.1)
    books = torch.eye(4).unsqueeze(0) * 5  # 1 level, 4 codewords far apart
    even = books[0].repeat(2, 1).unsqueeze(0)  # every code used twice
    crowded = books[0, :1].repeat(8, 1).unsqueeze(0)  # one code only
    assert cf.diversity_loss(even, books, 0.1).item() == pytest.approx(0, abs=1e-4)
    assert cf.diversity_loss(crowded, books, 0.1).item() == pytest.approx(math.log(4), abs=1e-3)


def _first_code_agreement(codes: np.ndarray, groups: int) -> float:
    g = np.arange(len(codes)) % groups
    same = np.equal.outer(g, g) & ~np.eye(len(codes), dtype=bool)
    return float(np.equal.outer(codes[:, 0], codes[:, 0])[same].mean())


def test_collaborative_signal_reaches_the_codes():
    """Text embeddings that carry no group signal; sessions that do: with the alignment term, items
    of one group share their first code far more often than without it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 16)).astype(np.float32)
    seqs = _clustered_sequences(96, 4, rng)
    base = dict(levels=2, codebook_size=4, hidden=[32], latent_dim=8, steps=400, batch_size=96, lr=3e-3, seed=0,
                threads=1, diversity_weight=0.0)
    plain, _, _ = cf.rqvae_train.fit(x, IdsConfig(method="rqvae", **base))
    codec, codes, curve = cf.fit(x, IdsConfig(method="rqvae_cf", cf_weight=10.0, cf_dim=8, **base), sequences=seqs)
    assert "align" in curve[-1] and curve[-1]["align"] < curve[0]["align"]
    plain_codes = plain.codes(x)
    assert _first_code_agreement(codes, 4) > _first_code_agreement(plain_codes, 4) + 0.25
    assert (codec.codes(x) == codes).all()  # new items: the text alone gives the same codes


def test_rqvae_cf_needs_sequences_and_trains_on_a_toy_run(tmp_path):
    with pytest.raises(ValueError, match="training sequences"):
        cf.fit(np.zeros((4, 3), dtype=np.float32), IdsConfig(method="rqvae_cf"))
    out = tmp_path / "toy"
    runner = CliRunner()
    for args in (["prepare", "--dataset", "toy", "--out", str(out)], ["embed", "--out", str(out)],
                 ["ids", "train", "--out", str(out), "method=rqvae_cf", "codebook_size=16", "steps=200", "tsne_sample=0"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output + repr(res.exception)
    folder = out / "ids" / "rqvae_cf-3x16"
    codes, _, _ = load_semantic_ids(folder)  # [N, L+1]: the codes, then the collision code
    assert len(np.unique(codes, axis=0)) == len(codes)  # every item a unique ID
    manifest = artifacts.read_json(folder / "manifest.json")
    assert "train" in manifest["inputs"]  # retrained when the training split changes
    assert artifacts.read_json(folder / "config.json")["extra"]["method"] == "rqvae_cf"
    # the quality report (and the tables built from it) names the method the IDs were trained as
    res = runner.invoke(app, ["ids", "analyze", "--out", str(out), "name=rqvae_cf-3x16", "tsne_sample=0"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert artifacts.read_json(folder / "ids_report.json")["method"] == "rqvae_cf"
