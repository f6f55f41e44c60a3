"""The unhappy paths a user meets (issue 13's table): each gives one clear line and exit 2, or the
correct recovery, and never a wrong number. Kill-and-resume lives in tests/test_resume.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core import config as cfgmod
from semid.core.run import RunFolder
from semid.pipeline import RunConfig

RUN = ["ids.method=rqkmeans", "ids.tsne_sample=0", "tiger.max_epochs=1", "evaluate.bootstrap=0"]


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def fails(res, *needles: str) -> None:
    """Exit 2, one `error:` line naming the problem, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, repr(res.exception))
    assert "Traceback" not in res.output and "error:" in res.output
    for n in needles:
        assert n in res.output, (n, res.output)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "toy"
    res = cli("run", "--dataset", "toy", "--out", str(out), *RUN)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out


@pytest.fixture()
def run(toy, tmp_path) -> Path:
    """A private copy of the toy run to damage."""
    dst = tmp_path / "toy"
    shutil.copytree(toy, dst)
    return dst


def shop(folder: Path, users: int, items: int) -> Path:
    """A user's own data: ``train.csv`` with 8 timestamped events per user."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = [(u, int(i), 1_600_000_000 + 60 * t) for u in range(users) for t, i in enumerate(rng.integers(0, items, 8))]
    pl.DataFrame(rows, schema=["user_id", "item_id", "time"], orient="row").write_csv(folder / "train.csv")
    return folder


def metrics_bytes(run: Path) -> bytes:
    return (run / "models" / "tiger" / "metrics.json").read_bytes()


def test_toy_defaults_to_a_codebook_of_its_size_and_the_tiny_preset():
    cfg = cfgmod.load(RunConfig, None, ["prepare.dataset=toy"])
    assert (cfg.ids.codebook_size, cfg.ids.steps, cfg.tiger.preset) == (16, 500, "tiny")
    mine = cfgmod.load(RunConfig, None, ["prepare.dataset=toy", "ids.codebook_size=64", "tiger.preset=cpu"])
    assert (mine.ids.codebook_size, mine.tiger.preset) == (64, "cpu")
    assert cfgmod.load(RunConfig, None, []).ids.codebook_size == 256  # other datasets keep TIGER's 3 × 256


def test_the_pipeline_fits_ids_with_collaborative_signal_unless_told_otherwise():
    assert RunConfig().ids.method == "rqvae_cf"
    assert cfgmod.load(RunConfig, None, []).ids.method == "rqvae_cf"
    assert cfgmod.load(RunConfig, None, ["ids.steps=10"]).ids.method == "rqvae_cf"  # other ids keys keep the default
    assert cfgmod.load(RunConfig, None, ["prepare.dataset=toy"]).ids.method == "rqvae_cf"
    assert cfgmod.load(RunConfig, None, ["ids.method=rqvae"]).ids.method == "rqvae"
    assert cfgmod.load(RunConfig, None, ["ids.method=rqvae"]).ids.folder_name() == "rqvae-3x256"


def test_model_trained_on_other_data_is_refused(run):
    before = metrics_bytes(run)
    assert cli("prepare", "--dataset", "toy", "--out", str(run), "seed=7").exit_code == 0
    fails(cli("evaluate", "--out", str(run)), "trained on other data", "train (", "semid train tiger")
    fails(cli("evaluate", "--out", str(run), "--force"), "trained on other data")
    assert metrics_bytes(run) == before  # no number was written for the stale model
    res = cli("run", "--dataset", "toy", "--out", str(run), *RUN, "prepare.seed=7")  # the fix: the pipeline retrains what is stale
    assert res.exit_code == 0, res.output
    assert metrics_bytes(run) != before


def test_preparing_another_dataset_into_a_run_folder_needs_force(run):
    fails(cli("prepare", "--format", "toy", "--dataset", "other", "--out", str(run)), "holds data of dataset 'toy'",
          "--force")
    assert cli("prepare", "--format", "toy", "--dataset", "other", "--out", str(run), "seed=3", "--force").exit_code == 0
    fails(cli("evaluate", "--out", str(run)), "trained on other data")


def test_truncated_weights_are_not_reused_or_loaded(run):
    weights = run / "models" / "tiger" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    fails(cli("evaluate", "--out", str(run)), "model.safetensors changed since training", "--force")
    fails(cli("evaluate", "--out", str(run), "--force"), "model.safetensors changed since training")


@pytest.mark.parametrize("edit", ["width", "kind", "broken"])
def test_edited_model_config_is_refused(run, edit):
    path = run / "models" / "tiger" / "config.json"
    meta = json.loads(path.read_text())
    if edit == "width":
        meta["args"]["d_model"] = 48
    elif edit == "kind":
        meta["kind"] = "sasrec"
    path.write_text("{ not json" if edit == "broken" else json.dumps(meta))
    needle = "is not valid JSON" if edit == "broken" else "config.json changed since training"
    fails(cli("evaluate", "--out", str(run), "--force"), needle)


def test_edited_id_model_config_makes_the_ids_stage_rerun(run):
    folder = run / "ids" / "rqkmeans-3x16"
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(cfg | {"input_dim": 7}))
    res = cli("run", "--dataset", "toy", "--out", str(run), *RUN, "--until", "ids")
    assert res.exit_code == 0, res.output
    assert json.loads((folder / "config.json").read_text())["input_dim"] == 384  # rebuilt, not "up to date"
    assert cli("ids", "assign", "--out", str(run)).exit_code == 0


def test_truncated_semantic_ids_are_recomputed(run):
    ids = run / "ids" / "rqkmeans-3x16" / "semantic_ids.parquet"
    good = pl.read_parquet(ids)
    ids.write_bytes(ids.read_bytes()[:64])
    res = cli("run", "--dataset", "toy", "--out", str(run), *RUN, "--until", "ids")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(ids).equals(good)  # recomputed, identical (deterministic)


def test_out_pointing_at_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    fails(cli("evaluate", "--out", str(f)), "is a file, not a run folder")


def test_corrupt_last_checkpoint_on_resume(run):
    last = run / "models" / "tiger" / "checkpoints" / "last.ckpt"
    last.write_bytes(b"garbage")
    fails(cli("train", "tiger", "--out", str(run), "preset=tiny", "max_epochs=2", "--resume"), "last.ckpt is unreadable")


def test_garbage_npy_for_assign(run, tmp_path):
    bad = tmp_path / "new.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    fails(cli("ids", "assign", "--out", str(run), "--input", str(bad)), "new.npy is unreadable")


def test_assign_rejects_duplicates_and_keeps_catalogue_ids(run, tmp_path):
    dup = tmp_path / "dup.csv"
    pl.DataFrame({"asin": ["N1", "N1"], "text": ["a red lipstick", "a blue lipstick"]}).write_csv(dup)
    fails(cli("ids", "assign", "--out", str(run), "--input", str(dup)), "appear more than once", "N1")
    items = RunFolder(run).table("items")
    known = items["asin"][3]
    new = tmp_path / "new.csv"
    pl.DataFrame({"asin": [known, "BRAND-NEW"], "text": [items["text"][3], "a brand new face cream"]}).write_csv(new)
    res = cli("ids", "assign", "--out", str(run), "--input", str(new), "--to", str(tmp_path / "ids.parquet"))
    assert res.exit_code == 0, res.output
    got = pl.read_parquet(tmp_path / "ids.parquet")
    ids = pl.read_parquet(run / "ids" / "rqkmeans-3x16" / "semantic_ids.parquet").filter(pl.col("item_id") == 3)
    row = got.filter(pl.col("asin") == known)
    assert row["catalogue_item_id"].to_list() == [3]
    assert row.select("code_1", "code_2", "code_3", "dedup").rows() == ids.select("code_1", "code_2", "code_3", "dedup").rows()
    assert got.filter(pl.col("asin") == "BRAND-NEW")["catalogue_item_id"].to_list() == [-1]


def test_compare_options_are_checked_before_any_work(tmp_path):
    out = tmp_path / "never"
    fails(cli("compare", "--dataset", "toy", "--out", str(out), "compare.split=foo"), "compare.split")
    fails(cli("compare", "--dataset", "toy", "--out", str(out), "compare.models=[nosuch]"), "nosuch")
    assert not (out / "data").exists()


def test_analyze_finds_the_only_trained_ids(run):
    res = cli("ids", "analyze", "--out", str(run))  # defaults name rqvae-3x256; the run trained rqkmeans-3x16
    assert res.exit_code == 0, res.output
    assert (run / "ids" / "rqkmeans-3x16" / "ids_report.json").is_file()
    fails(cli("ids", "analyze", "--out", str(run), "method=random"), "holds no Semantic IDs", "rqkmeans-3x16")


def test_results_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(cli("results"), "no results records")


def test_own_data_is_recorded_under_its_own_name(tmp_path):
    data = shop(tmp_path / "my_shop", users=60, items=25)
    out = tmp_path / "run"
    res = cli("prepare", "--format", "csv", "--path", str(data), "--out", str(out), "k_core=2")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert RunFolder(out).dataset() == "my_shop"
    assert cli("train", "pop", "--out", str(out)).exit_code == 0
    res = cli("evaluate", "--out", str(out), "model=pop", "bootstrap=0")
    assert res.exit_code == 0 and "on my_shop test" in res.output
    assert json.loads((out / "models" / "pop" / "metrics.json").read_text())["dataset"] == "my_shop"


def test_a_second_writer_of_a_run_folder_is_refused(run):
    fd = RunFolder(run).lock("semid run --out elsewhere (test holder)")
    try:
        fails(cli("evaluate", "--out", str(run)), "is in use by pid", "test holder")
        assert "(`semid run --out elsewhere (test holder)`" in (RunFolder(run).holder() or "")  # what `experiment --list` shows
    finally:
        from semid.core.run import unlock

        unlock(fd)
    assert RunFolder(run).holder() is None
    assert cli("evaluate", "--out", str(run)).exit_code == 0  # free again


def test_unfinished_checkpoints_are_not_deleted_without_resume_or_force(run):
    ckpts = run / "models" / "tiger" / "checkpoints"
    (run / "models" / "tiger" / "manifest.json").unlink()  # as if training had been interrupted
    fails(cli("train", "tiger", "--out", str(run), "preset=tiny"), "unfinished training run", "--resume")
    assert (ckpts / "last.ckpt").is_file()


def test_same_config_and_seed_give_byte_identical_data_and_ids(toy, tmp_path):
    again = tmp_path / "again"
    res = cli("run", "--dataset", "toy", "--out", str(again), *RUN, "--until", "ids")
    assert res.exit_code == 0, res.output
    for rel in ("data/train.parquet", "data/items.parquet", "data/test.parquet", "ids/rqkmeans-3x16/semantic_ids.parquet"):
        assert (again / rel).read_bytes() == (toy / rel).read_bytes(), rel
    manifest = json.loads((again / "ids" / "rqkmeans-3x16" / "manifest.json").read_text())
    assert "GPU" in manifest["determinism"] and manifest["hardware"]["torch_threads"] >= 1


def test_the_whole_pipeline_runs_on_a_users_own_folder(tmp_path):
    data = shop(tmp_path / "myshop", users=80, items=40)
    out = tmp_path / "run"
    res = cli("run", "--format", "csv", "--path", str(data), "--out", str(out), "prepare.k_core=2", "ids.method=rqkmeans",
              "ids.codebook_size=4", "ids.tsne_sample=0", "tiger.preset=tiny", "evaluate.bootstrap=0")
    assert res.exit_code == 0, res.output + repr(res.exception)
    m = json.loads((out / "models" / "tiger" / "metrics.json").read_text())
    assert m["dataset"] == "myshop" and m["users"] == 80 and "| myshop | tiger |" in res.output
