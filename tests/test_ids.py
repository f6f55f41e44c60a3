"""Semantic IDs: training, uniqueness, assignment, determinism, files and errors (small and fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from semid.core.errors import DataError
from semid.ids import assign, train
from semid.ids import dedup as dd
from semid.ids.config import IdsConfig
from semid.ids.methods import load_codec
from semid.ids.table import load_semantic_ids

TINY = {"levels": 2, "codebook_size": 16, "hidden": [32], "latent_dim": 8, "steps": 80, "batch_size": 128,
        "reset_every": 10, "log_every": 10, "tsne_sample": 60, "threads": 1}


def clustered(n: int = 400, d: int = 24, k: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    x = centres[rng.integers(0, k, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_run(root: Path, x: np.ndarray) -> Path:
    """A run folder holding prepared items and their embeddings."""
    run = root / "run"
    (run / "data").mkdir(parents=True)
    (run / "embed").mkdir()
    n = len(x)
    words = ["lipstick", "shampoo", "cream", "brush", "polish", "serum"]
    pl.DataFrame({
        "item_id": np.arange(n, dtype=np.int32),
        "title": [f"{words[i % 6]} item {i}" for i in range(n)],
        "categories": [["Makeup" if i % 2 else "Hair", words[i % 6]] for i in range(n)],
        "text": [f"{words[i % 6]} item {i}" for i in range(n)],
    }).write_parquet(run / "data" / "items.parquet")
    np.save(run / "embed" / "item_embeddings.npy", x)
    return run


def add_splits(run: Path, x: np.ndarray) -> int:
    """Train and validation tables: validation users go from an item to its nearest neighbour (same
    cluster), training users between unrelated items. Returns the number of users."""
    sim = x @ x.T
    np.fill_diagonal(sim, -2)
    near = sim.argmax(1)
    first = list(range(0, len(x), 2))
    pl.DataFrame({"user_id": range(len(first)), "history": [[i, (i * 7 + 3) % len(x)] for i in first],
                  "target": [(i * 13 + 5) % len(x) for i in first]}).write_parquet(run / "data" / "train.parquet")
    pl.DataFrame({"user_id": range(len(first)), "history": [[i] for i in first], "target": [int(near[i]) for i in first]}) \
        .write_parquet(run / "data" / "val.parquet")
    return len(first)


def cfg(**kw) -> IdsConfig:
    return IdsConfig(**(TINY | kw))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60))
def test_dedup_makes_ids_unique(rows):
    codes = np.array(rows)
    extra = dd.dedup_codes(codes)
    full = np.c_[codes, extra]
    assert len(np.unique(full, axis=0)) == len(codes)
    for i in range(len(codes)):  # extra code = number of earlier items with the same codes
        assert extra[i] == sum(1 for j in range(i) if (codes[j] == codes[i]).all())


def test_dedup_against_catalogue():
    existing = np.array([[1, 1, 0], [1, 1, 1], [2, 0, 0]])
    new = np.array([[1, 1], [1, 1], [3, 3], [2, 0]])
    extra = dd.dedup_against(existing, new)
    assert extra.tolist() == [2, 3, 0, 1]
    full = np.r_[existing, np.c_[new, extra]]
    assert len(np.unique(full, axis=0)) == len(full)


@pytest.mark.parametrize("method", ["rqvae", "rqkmeans", "random"])
def test_train_files_assign_and_reuse(tmp_path, method):
    x = clustered()
    run = make_run(tmp_path, x)
    c = cfg(method=method)
    folder = train.run(c, run)
    assert folder == train.ids_dir(run, c) == run / "ids" / f"{method}-2x16"
    for name in ("semantic_ids.parquet", "semantic_ids.csv", "config.json", "model.safetensors",
                 "codebooks.safetensors", "manifest.json"):
        assert (folder / name).is_file(), name
    df = pl.read_parquet(folder / "semantic_ids.parquet")
    assert df.columns == ["item_id", "code_1", "code_2", "dedup"]
    assert all(df[col].dtype == pl.Int32 for col in df.columns)
    codes, levels, size = load_semantic_ids(folder)
    assert (codes.shape, levels, size) == ((len(x), 3), 2, 16)
    assert len(np.unique(codes, axis=0)) == len(x)  # unique after the extra code
    # the model rebuilds from its files alone and gives the training assignment back
    assert np.array_equal(load_codec(folder).codes(x), codes[:, :2])
    out = assign.run(c, run)
    assert pl.read_parquet(out).equals(df)
    # a second call with the same config and inputs reuses the folder
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    train.run(c, run)
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    # a folder written before collisions= and train_sample= existed (its manifest lacks them) is still
    # these IDs at their defaults, and is reused; another value of either retrains
    from semid.core import artifacts

    manifest = json.loads((folder / "manifest.json").read_text())
    old = {k: v for k, v in manifest["config"].items() if k not in ("collisions", "train_sample")}
    manifest |= {"config": old, "config_fingerprint": artifacts.fingerprint_value(old)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    train.run(c, run)
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    if method != "random":
        train.run(cfg(method=method, train_sample=300), run)
        assert (folder / "manifest.json").stat().st_mtime_ns != stamp
    if method == "rqvae":
        assert (folder / "train_curve.csv").is_file() and (folder / "train_curve.png").is_file()
        conf = json.loads((folder / "config.json").read_text())
        assert conf["levels"] == 2 and conf["latent_dim"] == 8


@pytest.mark.parametrize("method", ["rqkmeans", "rqvae"])
def test_a_sampled_fit_codes_every_item_in_chunks(tmp_path, method, monkeypatch):
    """train_sample: the model sees a sample, every item gets the frozen model's codes (chunk by
    chunk from the memory-mapped matrix), IDs stay unique, and the manifest says so."""
    x = clustered(n=900)
    run = make_run(tmp_path, x)
    monkeypatch.setattr(train, "CODE_CHUNK", 128)
    seen: list[int] = []
    real = train.METHODS[method].fit
    monkeypatch.setitem(train.METHODS, method, train.METHODS[method].__class__(
        lambda x, c, **kw: (seen.append(len(x)), real(x, c, **kw))[1], train.METHODS[method].codec, "spy"))
    c = cfg(method=method, train_sample=300)
    folder = train.run(c, run)
    assert seen == [300]
    codes, _, _ = load_semantic_ids(folder)
    assert len(codes) == 900 and len(np.unique(codes, axis=0)) == 900
    assert np.array_equal(load_codec(folder).codes(x), codes[:, :2])
    extra = json.loads((folder / "manifest.json").read_text())
    assert extra["fitted_on_items"] == 300 and extra["items"] == 900
    assert train.ids_dir(run, c) == train.ids_dir(run, cfg(method=method))  # same folder name, another identity
    with pytest.raises(Exception, match="train_sample is not available for method=rqvae_cf"):
        train.fit(x, cfg(method="rqvae_cf", train_sample=300), sequences=[[0, 1, 2]])


def test_rqvae_uses_most_codes_on_clustered_data():
    x = clustered(n=800, k=20)
    codec, codes, curve = train.fit(x, cfg(steps=150))
    for level in range(2):
        assert len(np.unique(codes[:, level])) / 16 >= 0.8
    assert curve[-1]["recon"] < curve[0]["recon"]


@pytest.mark.parametrize("method", ["rqvae", "rqkmeans", "random"])
def test_same_seed_same_ids(method):
    x = clustered(n=300)
    a = train.fit(x, cfg(method=method, steps=40))[1]
    b = train.fit(x, cfg(method=method, steps=40))[1]
    assert np.array_equal(a, b)
    if method != "rqvae":  # another seed changes them
        assert not np.array_equal(a, train.fit(x, cfg(method=method, seed=1))[1])


def test_new_items_stay_unique(tmp_path):
    x = clustered()
    run = make_run(tmp_path, x)
    c = cfg(method="rqkmeans")
    folder = train.run(c, run)
    new = np.r_[x[:5], x[:5], clustered(n=7, seed=3)]
    np.save(tmp_path / "new.npy", new)
    out = assign.run(c, run, source=tmp_path / "new.npy", output=tmp_path / "new_ids.parquet")
    got = pl.read_parquet(out)
    assert got.height == 17 and (tmp_path / "new_ids.csv").is_file()
    existing, _, _ = load_semantic_ids(folder)
    new_ids = got.select(["code_1", "code_2", "dedup"]).to_numpy()
    everything = np.r_[existing, new_ids]
    assert len(np.unique(everything, axis=0)) == len(everything)
    # catalogue copies get the catalogue's codes
    assert np.array_equal(new_ids[:5, :2], existing[:5, :2])


def test_wrong_dimension_is_a_clear_error(tmp_path):
    x = clustered()
    run = make_run(tmp_path, x)
    c = cfg(method="rqkmeans")
    train.run(c, run)
    np.save(tmp_path / "bad.npy", x[:, :10])
    with pytest.raises(DataError, match="dimension 10 .* trained on 24-d"):
        assign.run(c, run, source=tmp_path / "bad.npy")
    with pytest.raises(DataError, match="dimension"):
        load_codec(train.ids_dir(run, c)).codes(np.zeros((3, 5), dtype=np.float32))


def test_empty_catalogue_is_a_clear_error(tmp_path):
    run = make_run(tmp_path, np.zeros((0, 8), dtype=np.float32))
    with pytest.raises(DataError, match="empty"):
        train.run(cfg(), run)
    with pytest.raises(DataError, match="empty"):
        train.fit(np.zeros((0, 8), dtype=np.float32), cfg(method="rqkmeans"))


def test_missing_embeddings_name_the_command(tmp_path):
    with pytest.raises(DataError, match="semid embed"):
        train.run(cfg(), tmp_path / "nowhere")


def test_cli_train_analyze_assign(tmp_path):
    from semid.cli import app

    x = clustered()
    run = make_run(tmp_path, x)
    users = add_splits(run, x)
    args = ["--out", str(run), "method=rqkmeans", "levels=2", "codebook_size=16", "tsne_sample=60"]
    runner = CliRunner()
    for cmd in ("train", "analyze", "assign"):
        res = runner.invoke(app, ["ids", cmd, *args])
        assert res.exit_code == 0, res.output
    folder = run / "ids" / "rqkmeans-2x16"
    rep = json.loads((folder / "ids_report.json").read_text())
    assert rep["collisions"]["unique_after_dedup"] is True
    assert rep["coherence"]["prefix"][0]["mean_cosine"] > rep["coherence"]["random_pairs"]
    assert rep["code_meanings"] and rep["category_purity"]["prefix"][0]["top_purity"] > 0
    agree = rep["next_item"]
    assert agree["train"]["pairs"] == 2 * users and agree["val"]["pairs"] == users
    assert agree["val"]["prefix"][0]["lift"] > 3 > 1.5 > agree["train"]["prefix"][0]["lift"]  # neighbours share codes, random pairs not
    assert "## Next-item agreement" in (folder / "report.md").read_text()
    for name in ("report.md", "code_usage.png", "coherence.png", "tsne.png"):
        assert (folder / name).is_file(), name
    bad = runner.invoke(app, ["ids", "train", "--out", str(run), "levels=zero"])
    assert bad.exit_code == 2 and "levels" in bad.output


def test_sweep_writes_one_table(tmp_path):
    from semid.ids import sweep

    x = clustered()
    run = make_run(tmp_path, x)
    add_splits(run, x)
    out = sweep.run(cfg(), run, methods=["rqkmeans", "random"], levels=[1, 2], sizes=[8])
    rows = pl.read_csv(out / "sweep.csv")
    lift = {(r["method"], r["levels"]): r["next_item_lift_l1"] for r in rows.iter_rows(named=True)}
    assert lift[("rqkmeans", 2)] > 3 > 1.5 > lift[("random", 2)]  # neighbours share a k-means code, not a random one
    assert rows.height == 4 and set(rows["method"]) == {"rqkmeans", "random"}
    assert "| rqkmeans | 2 | 8 |" in (out / "sweep.md").read_text()


def test_run_config_has_embed_and_ids_stages():
    from semid.core import config as cfgmod
    from semid.pipeline import STAGES, RunConfig

    names = [n for n, _ in STAGES]
    assert names.index("prepare") < names.index("embed") < names.index("ids")
    run = cfgmod.load(RunConfig, None, ["ids.method=rqkmeans", "embed.batch_size=8"])
    assert run.ids.method == "rqkmeans" and run.embed.batch_size == 8
    paper = cfgmod.load(IdsConfig, Path(__file__).resolve().parents[1] / "configs" / "ids_paper.yaml", section="ids")
    assert (paper.optimizer, paper.lr, paper.levels, paper.codebook_size) == ("adagrad", 0.4, 3, 256)


def test_thread_choice_does_not_leak(tmp_path):
    import torch

    before = torch.get_num_threads()
    train.fit(clustered(n=100), cfg(method="rqkmeans", threads=1))
    assert torch.get_num_threads() == before
