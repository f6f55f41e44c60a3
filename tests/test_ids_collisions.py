"""Collision handling that keeps IDs at L codes (``collisions=reencode``): invariants of the
re-encoding, its overflow path, the tokenizer without a collision level, and a toy run from IDs to
TIGER, ``semid ids assign`` and the service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import semid
from semid.cli import app
from semid.core.errors import DataError
from semid.core.run import RunFolder
from semid.generative.tokens import SIDTokenizer
from semid.ids import train
from semid.ids.codec import Codec
from semid.ids.collisions import reencode, unique_ids
from semid.ids.config import IdsConfig
from semid.ids.rqkmeans import KMeansCodec


def codec_of(books: np.ndarray) -> KMeansCodec:
    levels, k, d = books.shape
    return KMeansCodec("rqkmeans", d, levels, k, 0, books.astype(np.float32))


def random_case(seed: int, n: int, levels: int = 2, k: int = 6, d: int = 3):
    rng = np.random.default_rng(seed)
    books = rng.normal(size=(levels, k, d)).astype(np.float32)
    books[1:] *= 0.3
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[rng.integers(0, n, n // 3)] = x[0]  # exact duplicates: ties everywhere
    codec = codec_of(books)
    return codec, x, codec.codes(x)


def last_level_dist(codec: Codec, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Squared distance of each item's last residual to every last-level codeword (slowly, item by item)."""
    out = []
    for xi, ci in zip(x.astype(np.float64), codes):
        r = xi - sum(codec.codebooks[lvl][ci[lvl]] for lvl in range(len(ci) - 1))
        out.append([float(((r - w) ** 2).sum()) for w in codec.codebooks[-1]])
    return np.array(out)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 36))
def test_reencode_keeps_l_codes_unique_and_moves_only_collisions(seed, n):
    codec, x, raw = random_case(seed, n)
    new = reencode(codec, x, raw, np.zeros((0, 2), dtype=np.int64))
    assert new.shape == raw.shape and len({tuple(r) for r in new.tolist()}) == n  # unique at L codes
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(raw.tolist()):
        groups.setdefault(tuple(r), []).append(i)
    err = last_level_dist(codec, x, raw)[np.arange(n), raw[:, -1]]
    taken = {tuple(r) for r in new.tolist()}
    for members in groups.values():
        kept = [i for i in members if (new[i] == raw[i]).all()]
        assert len(kept) == 1  # exactly one item per group keeps its codes: the nearest its codeword
        assert err[kept[0]] == pytest.approx(min(err[members]), abs=1e-9)
        for i in members:
            if i == kept[0] or new[i, 0] != raw[i, 0]:
                continue  # moved one level up (the prefix was full): checked in the overflow test
            d = last_level_dist(codec, x[i:i + 1], new[i:i + 1])[0]
            nearer = [c for c in range(codec.codebook_size) if d[c] < d[new[i, 1]] - 1e-9]
            assert all((new[i, 0], c) in taken for c in nearer)  # every nearer code is some item's


def test_full_prefix_moves_one_level_up_and_impossible_cases_say_so():
    books = np.zeros((2, 2, 2), dtype=np.float32)
    books[0] = [[0, 0], [10, 0]]
    books[1] = [[0, 0], [0, 1]]
    codec = codec_of(books)
    x = np.array([[0, 0], [0, 0.9], [0.1, 0], [0, 0.2]], dtype=np.float32)  # four items under code 0
    new = reencode(codec, x, codec.codes(x), np.zeros((0, 2), dtype=np.int64))
    assert len({tuple(r) for r in new.tolist()}) == 4
    assert sorted(map(tuple, new[new[:, 0] == 0].tolist())) == [(0, 0), (0, 1)]  # the nearest two stay
    assert (new[:2] == [[0, 0], [0, 1]]).all() and (new[2:, 0] == 1).all()
    with pytest.raises(DataError, match=r"more than 2\^2 items need IDs of 2 levels"):
        reencode(codec, np.zeros((5, 2), dtype=np.float32), np.zeros((5, 2), dtype=np.int64), np.zeros((0, 2), np.int64))
    one = codec_of(books[:1])
    with pytest.raises(DataError, match=r"more than 2\^1 items"):
        reencode(one, np.zeros((3, 2), dtype=np.float32), np.zeros((3, 1), dtype=np.int64), np.zeros((0, 1), np.int64))


def test_new_items_never_take_a_catalogue_id():
    codec, x, raw = random_case(3, 30)
    catalogue = unique_ids(raw[:20], "reencode", codec=codec, x=x[:20])
    assert (catalogue[:, -1] == 0).all()
    new = unique_ids(raw[20:], "reencode", codec=codec, x=x[20:], existing=catalogue)
    both = np.vstack([catalogue, new])
    assert len({tuple(r) for r in both.tolist()}) == 30
    extra = unique_ids(raw[20:], "extra_code", existing=np.hstack([raw[:20], np.zeros((20, 1), np.int64)]))
    assert (extra[:, :-1] == raw[20:]).all()  # TIGER's scheme keeps the codes and counts up the last one
    with pytest.raises(ValueError, match="needs the ID model"):
        unique_ids(raw, "reencode")


def test_rqvae_collisions_move_in_its_latent_space():
    """The RQ-VAE's codebooks live in its latent space: re-encoding measures distances there."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    x[150:] = x[:150]  # every item has a twin: at least 150 collisions
    codec, raw, _ = train.fit(x, IdsConfig(method="rqvae", levels=2, codebook_size=32, hidden=[16], latent_dim=4,
                                           steps=20, batch_size=64, threads=1))
    assert codec.codebooks.shape[-1] == 4 and codec.latent(codec.check(x)).shape == (300, 4)
    full = unique_ids(raw, "reencode", codec=codec, x=x)
    assert len({tuple(r) for r in full.tolist()}) == 300 and (full[:, -1] == 0).all()
    z = codec.latent(codec.check(x)).astype(np.float64)
    moved = np.flatnonzero((full[:, :-1] != raw).any(1))
    assert len(moved) >= 150
    same_prefix = [i for i in moved if full[i, 0] == raw[i, 0]]
    assert len(same_prefix) >= 20
    for i in same_prefix[:20]:  # the new last code is the nearest of the codes no other item holds
        r = z[i] - codec.codebooks[0][raw[i, 0]]
        d = ((r[None] - codec.codebooks[1]) ** 2).sum(1)
        held = {int(c) for j, c in zip(full[:, 0], full[:, 1]) if j == full[i, 0]} - {int(full[i, 1])}
        assert d[full[i, 1]] == pytest.approx(min(d[c] for c in range(32) if c not in held), rel=1e-5)


def test_tokenizer_without_a_collision_level():
    codes = np.array([[0, 1, 0], [1, 1, 0], [2, 0, 0]])
    tok = SIDTokenizer.from_codes(codes, codebook_size=3, extra_code=False)
    assert tok.id_length == 2 and tok.dedup_size == 0 and tok.vocab_size == 3 + 2 * 3
    assert tok.item_tokens.tolist() == [[3, 7], [4, 7], [5, 6]]
    assert tok.decode(tok.item_tokens).tolist() == [0, 1, 2]
    assert tok.decode(torch.tensor([[3, 6]])).tolist() == [-1]
    assert tok.level_mask().sum(1).tolist() == [3, 3]
    with pytest.raises(ValueError, match="last column of zeros"):
        SIDTokenizer(codes + [0, 0, 1], codebook_size=3, dedup_size=0)
    assert SIDTokenizer.from_codes(codes, codebook_size=3).id_length == 3  # the extra code stays by default


def test_reencode_and_dedup_false_conflict():
    with pytest.raises(ValueError, match="pick one"):
        IdsConfig(collisions="reencode", dedup=False)
    assert IdsConfig(collisions="reencode").scheme() == "reencode" and IdsConfig(dedup=False).scheme() == "none"


def invoke(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_toy_run_with_ids_of_l_codes(tmp_path: Path):
    """IDs of 3 codes, no extra code: TIGER trains and decodes them, new items get free IDs, the
    service shows 3-code IDs."""
    out = str(tmp_path / "toy")
    invoke("prepare", "--dataset", "toy", "--out", out)
    invoke("embed", "--out", out)
    invoke("ids", "train", "--out", out, "method=rqkmeans", "codebook_size=8", "collisions=reencode", "name=rq8",
           "tsne_sample=0")
    folder = RunFolder(out).ids_dir("rq8")
    table = pl.read_parquet(folder / "semantic_ids.parquet")
    assert table.columns == ["item_id", "code_1", "code_2", "code_3"]
    assert table.select("code_1", "code_2", "code_3").n_unique() == table.height
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["collision_scheme"] == "reencode" and manifest["unique_after_dedup"] is True
    assert manifest["reencoded_items"] > 0 and manifest["collisions"]["items_in_collision"] > manifest["reencoded_items"]
    invoke("ids", "analyze", "--out", out, "name=rq8", "tsne_sample=0")
    rep = json.loads((folder / "ids_report.json").read_text())
    assert rep["collisions"]["reencoded_items"] == manifest["reencoded_items"]
    assert "re-encoded to their nearest free code" in (folder / "report.md").read_text()

    invoke("train", "tiger", "--out", out, "ids=rq8", "preset=tiny", "max_epochs=1", "val_users=50", "threads=1")
    model = RunFolder(out).root / "models" / "tiger"
    meta = json.loads((model / "config.json").read_text())
    assert meta["tokenizer"]["dedup_size"] == 0 and meta["args"]["id_length"] == 3
    loaded = semid.load(out)
    catalogue = {tuple(r) for r in loaded.catalogue.codes.tolist()}
    assert len(next(iter(catalogue))) == 3
    recs = loaded.recommend([0, 1, 2], model="tiger", k=10)
    assert len(recs["items"]) == 10 and all(len(it["sid"]) == 3 and tuple(it["sid"]) in catalogue for it in recs["items"])

    invoke("train", "sid-gru", "--out", out, "ids=rq8", "d_model=16", "d_ff=32", "max_epochs=1", "val_users=50",
           "threads=1")
    gru = json.loads((RunFolder(out).root / "models" / "sid-gru" / "config.json").read_text())
    assert gru["tokenizer"]["dedup_size"] == 0 and len(gru["args"]["level_ranges"]) == 3
    invoke("evaluate", "--out", out, "model=sid-gru", "bootstrap=0")
    m = json.loads((RunFolder(out).root / "models" / "sid-gru" / "metrics.json").read_text())
    assert m["users"] == RunFolder(out).table("test").height and 0 <= m["metrics"]["recall@10"] <= 1

    texts = ["Adjustable dumbbell set with a stand", "Adjustable dumbbell set with a stand", "Waterproof mascara"]
    got = loaded.assign(texts)
    sids = [tuple(g["sid"]) for g in got]
    assert all(len(s) == 3 for s in sids) and len(set(sids)) == 3 and not set(sids) & catalogue
    assert got[1]["reencoded"] is True and got[0]["models"]["tiger"]["can_generate"] is True
    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    invoke("ids", "assign", "--out", out, "name=rq8", "--input", str(tmp_path / "new.txt"), "--to", str(tmp_path / "a.parquet"))
    assigned = pl.read_parquet(tmp_path / "a.parquet")
    assert "dedup" not in assigned.columns and assigned.select("code_1", "code_2", "code_3").rows() == sids
