"""``semid experiment``: a grid over run-level keys × seeds; shared stages once, resumable, one table."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from semid.cli import app
from semid.core.config import ConfigError
from semid.core.run import RunFolder
from semid.embed import encode
from semid.evaluate import stage as ev_stage
from semid.experiments import compare, experiment, experiment_table
from semid.experiments.compare import Cell, CompareConfig
from semid.generative import beam, coldstart
from semid.ids import train as ids_train
from semid.models import registry
from semid.models import stage as model_stage
from semid.pipeline import RunConfig
from test_faults import shop as user_folder

RECIPE = {
    "prepare": {"dataset": "toy"},
    "ids": {"method": "rqkmeans", "tsne_sample": 0},
    "compare": {"models": ["pop", "sid-gru"], "budget": {"max_epochs": 1, "val_users": 50}, "seeds": [0, 1],
                "threads": 1, "bootstrap": 50, "permutations": 200},
    "experiment": {"description": "toy: codebook size and beam", "grid": {"ids.codebook_size": [8, 16], "compare.beam_size": [5, 10]},
                   "baseline": {"ids.codebook_size": 16, "compare.beam_size": 10}, "baseline_model": "pop"},
}


def _recipe(tmp_path, **changes):
    data = json.loads(json.dumps(RECIPE))
    for key, value in changes.items():
        data["experiment"][key] = value
    path = tmp_path / "toy-grid.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The toy grid run once, counting how often embeddings and IDs were computed."""
    tmp = tmp_path_factory.mktemp("exp")
    calls = {"embed": 0, "ids": 0}
    embed_texts, fit = encode.embed_texts, ids_train.fit

    def count(name, fn):
        def wrapped(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapped

    mp = pytest.MonkeyPatch()
    mp.setattr(encode, "embed_texts", count("embed", embed_texts))
    mp.setattr(ids_train, "fit", count("ids", fit))
    out = tmp / "out"
    res = CliRunner().invoke(app, ["experiment", str(_recipe(tmp)), "--out", str(out), "--runs", str(out), "--record",
                                   str(tmp / "results"), "--allow-dirty"])
    mp.undo()
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, calls, tmp


def test_grid_points_share_stages_and_fill_one_table(finished):
    out, calls, _ = finished
    assert calls == {"embed": 1, "ids": 2}  # one run folder's embeddings; one ID fit per codebook size
    assert sorted(p.name for p in (out / "toy" / "ids").iterdir() if p.is_dir()) == ["rqkmeans-3x16", "rqkmeans-3x8"]
    models = sorted(p.name for p in (out / "toy" / "models").iterdir())
    # trained once per (codebook size, seed) whatever the beam: evaluation-only points share the folder
    assert models == [f"{m}@toy-grid.codebook_size={k}{s}" for m, k, s in [("pop", 16, ""), ("pop", 8, ""), ("sid-gru", 16, ""),
                                                                               ("sid-gru", 16, "-s1"), ("sid-gru", 8, ""),
                                                                               ("sid-gru", 8, "-s1")]]
    assert (out / "toy" / "models" / "sid-gru@toy-grid.codebook_size=8" / "metrics-beam5.json").is_file()
    table = json.loads((out / "experiment.json").read_text())
    rows = {(r["model"], r["point_label"]): r for r in table["rows"]}
    assert len(rows) == 8 and all(len(r["seeds"]) == (2 if r["model"] == "sid-gru" else 1) for r in rows.values())
    r = rows[("sid-gru", "codebook_size=8,beam_size=5")]
    per_seed = [json.loads(open(s["metrics_file"]).read())["metrics"]["recall@10"] for s in r["per_seed"]]
    assert r["history kept"]["mean"]["recall@10"] == pytest.approx(sum(per_seed) / 2)
    assert r["ids_quality"]["ids"] == "rqkmeans-3x8" and 0 <= r["ids_quality"]["collision_share"] <= 1
    assert 0 <= r["ids_quality"]["next_item_share"] <= 1 and r["ids_quality"]["next_item_lift"] > 0  # from ids analyze
    assert r["cell_wall_s"] > 0 and table["cost"]["total_s"] >= table["cost"]["cells_s"] > 0
    md = (out / "experiment.md").read_text()
    assert "| ids.codebook_size | compare.beam_size | model |" in md and "sid-gru" in md
    assert "| train s (mean a seed) | cells s (sum over seeds) |" in md  # the seeds' training mean, their cells' total
    assert (out / "experiment.png").stat().st_size > 1000


def test_paired_tests_only_between_rows_on_the_same_users(finished):
    out, _, _ = finished
    table = json.loads((out / "experiment.json").read_text())
    pairs = {(t["model"], t["baseline"]) for t in table["tests"]}
    base = "sid-gru@codebook_size=16,beam_size=10"  # rows of the table are named by model and point
    assert ("sid-gru@codebook_size=8,beam_size=5", base) in pairs  # point vs baseline point, same model
    assert ("sid-gru@codebook_size=8,beam_size=5", "pop@codebook_size=8,beam_size=5") in pairs  # vs baseline_model
    assert all(t["seeds"][0] >= 1 and "p_holm" in t for t in table["tests"])
    assert len(table["tests"]) == 4 * len(pairs)  # both protocols × Recall@10 and NDCG@10
    holm = sorted(t["p_holm"] for t in table["tests"])
    assert holm == sorted(holm) and all(t["p_holm"] >= t["p_permutation"] for t in table["tests"])


def test_a_baseline_on_some_keys_pairs_each_point_within_the_others():
    """baseline {ids.method: rqvae} over datasets × methods: each dataset's rqvae_cf against that
    dataset's rqvae, never across datasets (different users); a full baseline stays one point."""
    exp = experiment.ExperimentConfig(grid={"prepare.dataset": ["a", "b"], "ids.method": ["rqvae", "rqvae_cf"]},
                                      baseline={"ids.method": "rqvae"})
    pts = [experiment.Point({"prepare.dataset": d, "ids.method": m}, None) for d in "ab" for m in ("rqvae", "rqvae_cf")]
    rows = [{"point_label": p.label(), "model": "sid-gru", "row": f"sid-gru@{p.label()}", "run_dir": p.values["prepare.dataset"],
             "split": "val"} for p in pts]
    pairs, skipped = experiment_table.pairs_of(rows, exp, pts)
    assert pairs == [("sid-gru@dataset=a,method=rqvae_cf", "sid-gru@dataset=a,method=rqvae"),
                     ("sid-gru@dataset=b,method=rqvae_cf", "sid-gru@dataset=b,method=rqvae")] and skipped == []
    full = exp.model_copy(update={"baseline": {"prepare.dataset": "a", "ids.method": "rqvae"}})
    pairs, skipped = experiment_table.pairs_of(rows, full, pts)
    assert pairs == [("sid-gru@dataset=a,method=rqvae_cf", "sid-gru@dataset=a,method=rqvae")]
    assert len(skipped) == 2 and all("different data" in s for s in skipped)


def test_recorded_tables_land_under_results(finished):
    out, _, tmp = finished
    dest = tmp / "results" / "experiments" / "toy-grid"
    assert (dest / "experiment.md").read_text() == (out / "experiment.md").read_text()
    rec = json.loads((dest / "experiment.json").read_text())
    assert rec["source"] == "measured" and rec["dirty"] in (True, False) and rec["git"]["commit"]


def test_a_killed_grid_continues_where_it_stopped(finished):
    out, _, tmp = finished
    models = out / "toy" / "models"
    done = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir() if (p / "model.safetensors").is_file()}
    victim = models / "sid-gru@toy-grid.codebook_size=8-s1"
    # as a kill during that cell's training leaves it: the run's identity in pending.json, its last
    # checkpoint, and neither weights, nor config, nor manifest, nor metrics
    meta = json.loads((victim / "config.json").read_text())
    spec = registry.get(meta["kind"])
    cfg = spec.config(**{k: v for k, v in meta["config"].items() if k != "ids_folder"})
    config, inputs, _ = model_stage._identity(spec, cfg, RunFolder(out / "toy"), out / "toy" / "ids" / "rqkmeans-3x8")
    for f in victim.iterdir():
        if f.is_file():
            f.unlink()
    (victim / model_stage.PENDING).write_text(json.dumps({"config": config, "inputs": inputs}))
    assert (victim / "checkpoints" / "last.ckpt").is_file()
    res = CliRunner().invoke(app, ["experiment", str(_recipe(tmp)), "--out", str(out), "--runs", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "continuing its interrupted" in " ".join(res.output.split()) and not (victim / model_stage.PENDING).exists()
    now = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir()}
    assert {n for n in done if now[n] != done[n]} == {victim.name}  # only the killed cell trained again
    assert (victim / "metrics-beam5.json").is_file() and (victim / "metrics-beam10.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_grid_killed_by_sigkill_continues_and_keeps_finished_cells(jobs, tmp_path):
    """A real `semid experiment` process group (its cell workers too, with jobs=2) is killed with
    SIGKILL while a SID-GRU cell trains: run again, finished cells are neither trained nor scored
    again, the killed cell continues or starts over, and the table has every seed."""
    data = json.loads(json.dumps(RECIPE))
    data["compare"] |= {"seeds": [0, 1, 2], "jobs": jobs, "budget": {"max_epochs": 12, "val_every": 1, "patience": 100, "val_users": 50}}
    data["experiment"] = {"description": "toy kill"}
    recipe = tmp_path / "toy-kill.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from semid.cli import main; main()", "experiment", str(recipe), "--out", str(out), "--runs", str(out)]
    models = out / "toy" / "models"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=os.environ | {"SEMID_PROGRESS": "0"})
    t0 = time.time()

    def state():
        folders = list(models.glob("sid-gru@*")) if models.is_dir() else []
        done = [p for p in folders if (p / "metrics.json").is_file()]
        running = [p for p in folders if (p / model_stage.PENDING).is_file() and (p / "checkpoints" / "last.ckpt").is_file()]
        return done, running

    while not all(state()):
        assert proc.poll() is None, "the grid finished before it could be killed: " + proc.stderr.read()[-2000:]
        assert time.time() - t0 < 600
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done, running = state()
    before = {p.name: (p / "metrics.json").stat().st_mtime_ns for p in done}
    assert not (out / "experiment.json").exists()
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(out), "--runs", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert {n: (models / n / "metrics.json").stat().st_mtime_ns for n in before} == before  # not scored again
    assert all(not (models / p.name / model_stage.PENDING).exists() for p in running)
    table = json.loads((out / "experiment.json").read_text())
    sid = next(r for r in table["rows"] if r["model"] == "sid-gru")
    assert sid["seeds"] == [0, 1, 2] and all(Path(s["metrics_file"]).is_file() for s in sid["per_seed"])


def test_bad_recipes_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="no recipe 'nosuch'"):
        experiment.read_recipe("nosuch")
    _, base, exp = experiment.read_recipe(_recipe(tmp_path, grid={"ids.levelz": [3]}))
    with pytest.raises(ConfigError, match="levelz"):
        experiment.points(base, exp)
    _, base, exp = experiment.read_recipe(_recipe(tmp_path, baseline={"ids.codebook_size": 99}))
    with pytest.raises(ConfigError, match="is not a grid point"):
        experiment.points(base, exp)
    with pytest.raises(ConfigError, match="gridd"):
        experiment.read_recipe(_recipe(tmp_path, gridd={}))


def test_explicit_points_run_only_those_points(tmp_path):
    listed = [{"ids.method": "rqvae", "ids.collisions": "extra_code"}, {"ids.method": "rqvae", "ids.collisions": "reencode"},
              {"ids.method": "rqkmeans", "ids.collisions": "extra_code"}]
    _, base, exp = experiment.read_recipe(_recipe(tmp_path, grid={}, points=listed, baseline={"ids.method": "rqvae",
                                                                                               "ids.collisions": "extra_code"}))
    pts = experiment.points(base, exp)
    assert [p.values for p in pts] == listed  # not the 2 x 2 product
    assert [(p.cfg.ids.method, p.cfg.ids.collisions) for p in pts] == [tuple(v.values()) for v in listed]
    assert exp.grid == {"ids.method": ["rqvae", "rqkmeans"], "ids.collisions": ["extra_code", "reencode"]}  # the table's columns
    assert "; ids.method=rqvae, ids.collisions=reencode;" in experiment_table.design(exp.model_dump(mode="json"))
    with pytest.raises(ConfigError, match="every point must set the same keys"):
        experiment.read_recipe(_recipe(tmp_path, grid={}, points=[listed[0], {"ids.method": "rqkmeans"}], baseline={}))
    with pytest.raises(ConfigError, match="either grid .* or points"):
        experiment.read_recipe(_recipe(tmp_path, points=listed, baseline={}))
    _, base, exp = experiment.read_recipe(_recipe(tmp_path, grid={}, points=[listed[0], listed[0]], baseline={}))
    with pytest.raises(ConfigError, match="listed twice"):
        experiment.points(base, exp)


def test_points_with_other_data_get_their_own_run_folder(tmp_path):
    _, base, exp = experiment.read_recipe(_recipe(tmp_path, grid={"prepare.k_core": [None, 3], "ids.seed": [0, 1]}, baseline={}))
    pts = experiment.points(base, exp)
    experiment.place(pts, tmp_path / "x")
    folders = {p.label(): p.run_dir.name for p in pts}
    assert folders["k_core=None,seed=0"] == "toy"  # the dataset's default settings: the folder `semid run` uses
    assert folders["k_core=3,seed=0"].startswith("toy-") and folders["k_core=3,seed=1"] == folders["k_core=3,seed=0"]
    ids = {p.label(): p.cfg.ids.folder_name() for p in pts}
    assert ids["k_core=3,seed=0"] != ids["k_core=3,seed=1"]  # same method and shape, other settings: own folder
    shape = next(p.cfg.ids for p in pts)
    assert ids["k_core=3,seed=0"] == f"{shape.method}-{shape.levels}x{shape.codebook_size}"  # the defaults keep the plain name


def test_a_recipe_scores_another_recipes_models_without_training_them(finished, tmp_path):
    """A validation recipe's models scored on another split by a second recipe (models_from): the
    same folders, no training, the other split's metrics beside the first's."""
    out, _, tmp = finished
    models = out / "toy" / "models"
    before = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir()}
    data = json.loads(json.dumps(RECIPE))
    data["compare"]["split"] = "val"
    data["experiment"]["models_from"] = "toy-grid"
    recipe = tmp / "toy-grid-val.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(tmp / "out-val"), "--runs", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir()} == before
    assert (models / "sid-gru@toy-grid.codebook_size=8-s1" / "metrics-val-beam5.json").is_file()
    table = json.loads((tmp / "out-val" / "experiment.json").read_text())
    assert {r["split"] for r in table["rows"]} == {"val"} and len(table["rows"]) == 8
    assert "those recipe `toy-grid` trained" in (tmp / "out-val" / "experiment.md").read_text()
    with pytest.raises(ConfigError, match="models_from"):
        experiment.read_recipe(_recipe(tmp_path, models_from="runs/elsewhere"))


def test_a_recipe_reuses_a_model_another_recipe_trained_with_the_same_settings(finished, tmp_path):
    """Another recipe whose point and seed match a trained folder exactly scores that folder instead
    of training again; a seed no recipe trained is trained as usual; `--list` says so beforehand, and
    the table names what it reused."""
    out, _, tmp = finished
    models = out / "toy" / "models"
    before = {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir()}
    data = json.loads(json.dumps(RECIPE))
    data["compare"]["seeds"] = [1, 2]
    data["experiment"] = {"grid": {"ids.codebook_size": [16]}}
    recipe = tmp_path / "toy-overlap.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    listed = CliRunner().invoke(app, ["experiment", str(recipe), "--runs", str(out), "--list"])
    assert listed.exit_code == 0, listed.output
    assert "sid-gru@toy-overlap.codebook_size=16 (seed 1): reuses sid-gru@toy-grid.codebook_size=16-s1" in listed.output
    assert "sid-gru@toy-overlap.codebook_size=16-s2 (seed 2): trains" in listed.output
    assert "pop@toy-overlap.codebook_size=16 (seed 1): trains" in listed.output
    assert listed.output.strip().endswith("cells: 1 reuses, 2 trains")
    assert experiment.plan(_recipe(tmp_path), runs=out)[-1] == "cells: 6 done"  # the grid that ran: nothing left to do
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(tmp_path / "o"), "--runs", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert {p.name: (p / "model.safetensors").stat().st_mtime_ns for p in models.iterdir() if p.name in before} == before
    trained = {p.name for p in models.iterdir() if p.name.startswith("sid-gru@toy-overlap") and (p / "model.safetensors").is_file()}
    assert trained == {"sid-gru@toy-overlap.codebook_size=16-s2"}  # seed 2 is new; seed 1 is toy-grid's folder
    table = json.loads((tmp_path / "o" / "experiment.json").read_text())
    assert table["reused"] == [{"folder": "sid-gru@toy-grid.codebook_size=16-s1", "cell": "sid-gru@toy-overlap.codebook_size=16"}]
    assert "Reused: 1 cell(s)" in (tmp_path / "o" / "experiment.md").read_text()
    row = next(r for r in table["rows"] if r["model"] == "sid-gru")
    assert [s["seed"] for s in row["per_seed"]] == [1, 2]
    spec = registry.get("sid-gru")
    cfg = json.loads((models / "sid-gru@toy-grid.codebook_size=16-s1" / "config.json").read_text())["config"]
    ids = RunFolder(out / "toy").ids_dir(cfg["ids_folder"])
    base = spec.config(**{k: v for k, v in cfg.items() if k != "ids_folder"})
    assert model_stage.twin("sid-gru", base.model_copy(update={"name": "x"}), out / "toy", ids=ids) == "sid-gru@toy-grid.codebook_size=16-s1"
    assert model_stage.twin("sid-gru", base.model_copy(update={"name": "x", "lr": base.lr * 2}), out / "toy", ids=ids) is None


def _seed_configs(out):
    """(config of toy-grid's sid-gru at codebook 16, seeds 0 and 1; their ID folder)."""
    spec = registry.get("sid-gru")
    cfg = json.loads((out / "toy" / "models" / "sid-gru@toy-grid.codebook_size=16" / "config.json").read_text())["config"]
    base = spec.config(**{k: v for k, v in cfg.items() if k != "ids_folder"})
    return base, RunFolder(out / "toy").ids_dir(cfg["ids_folder"])


def test_a_folder_another_cell_of_the_run_writes_is_never_adopted(finished):
    """Seeds [5, 0] under the toy grid's names: the seed-5 cell is named like the seed-0 folder (stale
    for it, so retrained), and the seed-0 cell must not adopt that folder, which is about to change."""
    out, _, _ = finished
    base, ids = _seed_configs(out)
    seed0 = base.name  # holds seed 0
    cells = [Cell("r", "sid-gru", base.model_copy(update={"seed": 5}), "test", run_dir=str(out / "toy"), ids_dir=str(ids)),
             Cell("r", "sid-gru", base.model_copy(update={"name": seed0 + "-s0"}), "test", run_dir=str(out / "toy"), ids_dir=str(ids))]
    assert model_stage.twin("sid-gru", cells[1].config, out / "toy", ids=ids) == seed0  # alone, it would be adopted
    experiment.adopt_twins(cells)
    assert [c.name for c in cells] == [seed0, seed0 + "-s0"] and not any(c.origin for c in cells)


def test_a_cell_whose_ids_are_not_fitted_waits_and_adopts_nothing(finished, tmp_path):
    """With one ID folder in the run, a cell on IDs still to fit must not be matched against it."""
    out, _, _ = finished
    base, ids = _seed_configs(out)
    run = tmp_path / "toy"
    for part in ("data", f"ids/{ids.name}", f"models/{base.name}"):
        shutil.copytree(out / "toy" / part, run / part)
    assert model_stage.state("sid-gru", base.model_copy(update={"name": "x"}), run, ids=run / "ids" / ids.name) == f"reuses {base.name}"
    later = run / "ids" / "rqkmeans-3x99"  # not fitted yet
    assert model_stage.state("sid-gru", base.model_copy(update={"name": "x"}), run, ids=later) == "waits for earlier stages"
    assert model_stage.twin("sid-gru", base.model_copy(update={"name": "x"}), run, ids=later) is None


REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (REPO / "configs" / "experiments").glob("*.yaml"))


def test_cold_start_points_score_and_test_the_cold_targets(tmp_path, monkeypatch):
    """Points scored in cold-start mode (TIGER section 4.4) cap every model's list, report Recall/NDCG@10
    on the users whose target no training row holds, and test each model against every baseline model
    there; the uncapped point (eps unset) reports them too."""
    data = json.loads(json.dumps(RECIPE))
    data["prepare"] = {"dataset": "toy", "holdout_items_share": 0.2, "seed": 0}
    data["compare"] |= {"models": ["pop", "knn", "sid-gru"], "seeds": [0]}
    data["experiment"] = {"description": "toy cold start", "grid": {"compare.cold_start_eps": [None, 0.0, 0.5]},
                          "baseline_model": ["pop", "knn"]}
    recipe = tmp_path / "toy-cold.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(out), "--runs", str(out), "--allow-dirty"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    table = json.loads((out / "experiment.json").read_text())
    rows = {(r["model"], r["point_label"]): r for r in table["rows"]}
    test = RunFolder(next(iter(rows.values()))["run_dir"]).table("test")
    cold_users = set(test.filter(pl.col("cold"))["user_id"].to_list())
    assert 0 < len(cold_users) < test.height
    cold_ranks = {}
    for key, r in rows.items():
        c = r["cold targets"]
        assert c["users"] == len(cold_users)
        metrics = Path(r["per_seed"][0]["metrics_file"])
        ranks = pl.read_parquet(metrics.parent / ev_stage.ranks_name(metrics))
        cold_rows = ranks.filter(pl.col("user_id").is_in(sorted(cold_users)))
        cold_ranks[key] = cold_rows["rank"].fill_null(99).to_numpy()
        cold_ranks[key + ("removed",)] = cold_rows["rank_history_removed"].fill_null(99).to_numpy()
        assert c["mean"]["recall@10"] == pytest.approx((cold_ranks[key] <= 10).mean())  # the ranks file, restricted by hand
        rule = json.loads(metrics.read_text())["protocol"]["cold_start_rule"]
        assert (rule is None) == (key[1] == "cold_start_eps=None")
    for model in ("pop", "knn", "sid-gru"):
        for protocol in ((), ("removed",)):  # the cap holds with the history kept and with it removed
            assert (cold_ranks[(model, "cold_start_eps=0.0", *protocol)] == 99).all()  # eps 0: no unseen item listed
            assert (cold_ranks[(model, "cold_start_eps=0.5", *protocol)] >= 2).all()  # floor(0.5 * 1) = 0 in the top 1
    assert rows[("knn", "cold_start_eps=None")]["cold targets"]["mean"]["recall@10"] > 0  # uncapped: the text finds them
    # eps 0.5: unseen items sharing a generated ID's first codes join the list (TIGER section 4.4)
    assert rows[("sid-gru", "cold_start_eps=0.5")]["cold targets"]["mean"]["recall@10"] > 0
    cold_tests = {(t["model"], t["baseline"]) for t in table["tests"] if t["protocol"] == "cold targets"}
    for point in ("cold_start_eps=None", "cold_start_eps=0.0", "cold_start_eps=0.5"):
        want = {(f"sid-gru@{point}", f"pop@{point}"), (f"knn@{point}", f"pop@{point}"), (f"sid-gru@{point}", f"knn@{point}")}
        assert want <= cold_tests  # every model against each baseline model, each pair once
    # 3 pairs of models at each of 3 points, and knn and sid-gru at eps 0.0 and 0.5 against the uncapped
    # point; pop never lists an unseen item high, so its pairs across points are named, not tested
    assert len(table["tests"]) == 13 * 6  # 13 pairs × (2 protocols + cold targets) × 2 metrics
    assert sorted(n.split(":")[0] for n in table["not_tested"]) == ["pop@cold_start_eps=0.0 vs pop@cold_start_eps=None",
                                                                    "pop@cold_start_eps=0.5 vs pop@cold_start_eps=None"]
    # the cap now changes knn's list: its points are tested against the first (uncapped) one
    assert ("knn@cold_start_eps=0.0", "knn@cold_start_eps=None") in cold_tests
    assert all(t["model"].split("@")[0] != t["baseline"].split("@")[0] or t["baseline"].endswith("=None")
               for t in table["tests"])
    # a metrics file that another cold-start rule scored is scored again, not reused
    r = rows[("knn", "cold_start_eps=0.5")]
    metrics = Path(r["per_seed"][0]["metrics_file"])
    rec = json.loads(metrics.read_text())
    metrics.write_text(json.dumps(rec | {"protocol": rec["protocol"] | {"cold_start_rule": "an older rule"}}))
    ev_stage.run(ev_stage.EvaluateConfig(**rec["config"]), r["run_dir"])
    assert json.loads(metrics.read_text())["protocol"]["cold_start_rule"] == coldstart.RULE
    # cold_start_codes=1: a generative model's match widens to the first code, into a file of its own
    built = []
    monkeypatch.setattr(beam, "ColdStart", lambda *a, **k: built.append(a) or coldstart.ColdStart(*a, **k))
    r = rows[("sid-gru", "cold_start_eps=0.5")]
    metrics = Path(r["per_seed"][0]["metrics_file"])
    wide = ev_stage.run(ev_stage.EvaluateConfig(**json.loads(metrics.read_text())["config"] | {"cold_start_codes": 1}),
                        r["run_dir"])
    assert wide.name == "metrics-cold0.5-codes1.json"
    assert json.loads(wide.read_text())["protocol"]["cold_start_codes"] == 1
    assert [a[2:] for a in built] == [(0.5, 1)]  # the ranker matched on 1 code
    # a model that decodes no IDs has nothing to match: the key changes neither its list nor its file
    r = rows[("knn", "cold_start_eps=0.5")]
    metrics = Path(r["per_seed"][0]["metrics_file"])
    assert ev_stage.run(ev_stage.EvaluateConfig(**json.loads(metrics.read_text())["config"] | {"cold_start_codes": 1}),
                        r["run_dir"]) == metrics
    width, height = struct.unpack(">II", (out / "experiment.png").read_bytes()[16:24])  # the PNG's IHDR
    assert width > 2 * height  # a second panel: Recall@10 on the cold targets
    md = (out / "experiment.md").read_text()
    assert "| R@10 cold targets | N@10 cold targets |" in md and f"({len(cold_users):,} users)" in md
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data | {"experiment": data["experiment"] | {"baseline_model": ["sasrec"]}}))
    res = CliRunner().invoke(app, ["experiment", str(bad), "--out", str(out), "--runs", str(out), "--list"])
    assert res.exit_code != 0 and "baseline_model" in res.output and "sasrec" in res.output


def test_an_unset_evaluation_key_never_takes_the_first_points_value():
    """A cell's evaluation settings are merged over the first point's: an unset key must be named too."""
    first = compare.evaluation(CompareConfig(models=["knn"], beam_size=40, cold_start_eps=0.1, cold_start_codes=1))
    for cfg in (CompareConfig(models=["knn"]), CompareConfig(models=["knn"], cold_start_eps=0.2)):
        ev = compare.evaluation(cfg)
        assert {**first, **ev} == ev and ev["cold_start_codes"] is None
        assert ev_stage.EvaluateConfig(**ev).model_dump(include=set(ev)) == ev


def test_a_metrics_file_older_than_an_option_stays_up_to_date_at_its_default():
    new = ev_stage.EvaluateConfig(cold_start_eps=0.1).model_dump(mode="json")
    old = {k: v for k, v in new.items() if k != "cold_start_codes"}  # written before the option existed
    assert ev_stage.same_config(old, new)
    assert not ev_stage.same_config(old, new | {"cold_start_codes": 2})
    assert not ev_stage.same_config(old | {"beam_size": 50}, new)
    assert not ev_stage.same_config(old | {"retired_key": 1}, new) and not ev_stage.same_config(None, new)
    with pytest.raises(ValueError, match="set cold_start_eps too"):
        ev_stage.EvaluateConfig(cold_start_codes=2)
    with pytest.raises(ValueError, match="set cold_start_eps too"):
        CompareConfig(models=["knn"], cold_start_codes=2)
    # more codes than the IDs have levels: refused when the run's config is read, before any training
    with pytest.raises(ValueError, match=r"compare.cold_start_codes=4 exceeds ids.levels=3"):
        RunConfig(ids={"levels": 3}, compare={"models": ["tiger"], "cold_start_eps": 0.1, "cold_start_codes": 4})
    RunConfig(ids={"levels": 3}, compare={"models": ["tiger"], "cold_start_eps": 0.1, "cold_start_codes": 3})


def test_the_study_recipes_are_shipped():
    study = {"ids-vs-random", "codebooks", "levels", "history", "beam", "cold-start"}
    assert study | {f"categories-{c}" for c in ("beauty", "sports", "office", "scientific")} <= set(SHIPPED)


def test_make_experiments_runs_every_shipped_recipe_after_the_one_whose_models_it_scores():
    """`make experiments` (the Makefile's RECIPES) regenerates every recipe of configs/experiments,
    and a recipe with ``models_from`` only after that recipe has trained them."""
    line = next(x for x in (REPO / "Makefile").read_text().splitlines() if x.startswith("RECIPES ?="))
    order = line.split("=", 1)[1].split()
    assert sorted(order) == SHIPPED, f"missing from RECIPES: {sorted(set(SHIPPED) - set(order))}"
    for recipe in order:
        source = experiment.read_recipe(REPO / "configs" / "experiments" / f"{recipe}.yaml")[2].models_from
        assert source is None or order.index(source) < order.index(recipe), f"{recipe} runs before {source}"


@pytest.mark.parametrize("recipe", SHIPPED)
def test_every_shipped_recipe_lists_valid_points(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # recipes are found by name under configs/experiments
    res = CliRunner().invoke(app, ["experiment", recipe, "--list", "--runs", str(tmp_path)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    _, base, exp = experiment.read_recipe(recipe)
    expected = len(exp.points) or math.prod(len(v) for v in exp.grid.values())  # 1: a seeds-only recipe without a grid
    assert res.output.count("→") == expected >= 1
    assert expected > 1 or not (exp.grid or exp.points) and len(base["compare"]["seeds"]) > 1  # one point: seeds are its question


@pytest.mark.parametrize("recipe", SHIPPED)
def test_every_shipped_recipe_runs_on_a_users_own_folder(recipe, tmp_path, monkeypatch):
    """On one folder of the user's own data (--format/--path) a recipe's dataset axis goes and every
    other axis stays: ids-categories (dataset × ID method, plotted against the dataset) lists its two
    ID methods, and its plot takes their axis instead of failing."""
    monkeypatch.chdir(REPO)
    res = CliRunner().invoke(app, ["experiment", recipe, "--list", "--runs", str(tmp_path / "runs"), "--format", "csv",
                                   "--path", str(tmp_path / "my_shop")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    _, _, exp = experiment.read_recipe(recipe)
    kept = [k for k in exp.grid if k not in ("prepare.dataset", "prepare.format")]
    expected = len({tuple(p[k] for k in kept) for p in exp.points}) if exp.points else math.prod(len(exp.grid[k]) for k in kept)
    assert res.output.count("→") == expected and str(tmp_path / "runs" / "my_shop") in res.output
    assert recipe != "ids-categories" or expected == 2


def test_a_recipe_with_a_dataset_grid_trains_and_scores_on_a_users_own_folder(tmp_path):
    """End to end, not only --list: a recipe gridded over named datasets × ID methods, run on a CSV
    folder of the user's own data, prepares that folder once, fits both ID tables, trains and scores
    every model on it, and pairs the points within it."""
    shop = user_folder(tmp_path / "my_shop", users=80, items=40)
    data = json.loads(json.dumps(RECIPE))
    data["prepare"] = {"dataset": "toy", "k_core": 2}
    data["ids"] = {"codebook_size": 4, "tsne_sample": 0}
    data["compare"] |= {"seeds": [0]}
    data["experiment"] = {"description": "toy: datasets x ID methods", "grid": {"prepare.dataset": ["toy", "beauty"],
                                                                               "ids.method": ["rqkmeans", "random"]},
                          "baseline": {"ids.method": "random"}, "plot": "prepare.dataset"}
    recipe = tmp_path / "toy-own.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out, runs = tmp_path / "out", tmp_path / "runs"
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(out), "--runs", str(runs), "--format", "csv",
                                   "--path", str(shop)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    folders = list(runs.iterdir())  # one folder (k_core 2 is not the default: my_shop-<digest>) for both points
    assert len(folders) == 1 and folders[0].name.startswith("my_shop") and RunFolder(folders[0]).dataset() == "my_shop"
    table = json.loads((out / "experiment.json").read_text())
    assert sorted((r["model"], r["point_label"]) for r in table["rows"]) == [
        ("pop", "method=random"), ("pop", "method=rqkmeans"), ("sid-gru", "method=random"), ("sid-gru", "method=rqkmeans")]
    assert all(json.loads(Path(r["per_seed"][0]["metrics_file"]).read_text())["dataset"] == "my_shop" for r in table["rows"])
    assert ("sid-gru@method=rqkmeans", "sid-gru@method=random") in {(t["model"], t["baseline"]) for t in table["tests"]}
    assert (out / "experiment.png").is_file()


def test_the_table_names_the_hardware_its_cells_ran_on():
    """Cells trained on a GPU machine and reused here: the cost line says where they ran, not only
    where the table was made."""
    here = {"cpus": 2, "cpu_model": "EPYC", "memory_gib": 23.5, "gpu": None}
    gpu = {"cpus": 16, "cpu_model": "Xeon", "memory_gib": 125.8, "gpu": "NVIDIA H200"}
    assert experiment_table._cells_ran_on([{"hardware": here}], {"hardware": here}) == ""
    said = experiment_table._cells_ran_on([{"hardware": gpu}, {"hardware": here}, {"hardware": gpu}], {"hardware": here})
    assert said == " (the cells ran on: 16 × Xeon, 125.8 GiB, GPU NVIDIA H200)"


@pytest.mark.parametrize("xs", [[1, 2, 3, 4], [256, 512, 1024], ["rqvae", "random"]])
def test_the_plot_marks_each_grid_value_and_nothing_between(xs, tmp_path, monkeypatch):
    """Levels 1..4 on the x axis: ticks at 1, 2, 3, 4 (not 1.5, 2.5), one per grid value."""
    shown = {}
    monkeypatch.setattr(experiment_table, "save", lambda fig, path, **kw: shown.update(fig=fig))
    rows = [{"point": {"ids.levels": x}, "model": "sid-gru",
             "history kept": {"mean": {"recall@10": 0.05 + 0.001 * i}, "ci95": {"recall@10": [0.04, 0.06 + 0.001 * i]}}}
            for i, x in enumerate(xs)]
    experiment_table.plot(tmp_path / "p.png", rows, "ids.levels", ["ids.levels"])
    ax = shown["fig"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(x) for x in xs]
    numeric = not isinstance(xs[0], str)
    assert list(ax.get_xticks()) == (xs if numeric else list(range(len(xs))))
    data = [line for line in ax.get_lines() if line.get_marker() == "o"]  # not the error bars' caps
    assert data and all((line.get_linestyle() == "-") == numeric for line in data)  # categories: no line between


def test_a_recipe_without_a_grid_plots_one_row_per_model(tmp_path, monkeypatch):
    """One point (the main comparison on one category): the plot lists the models by name."""
    shown = {}
    monkeypatch.setattr(experiment_table, "save", lambda fig, path, **kw: shown.update(fig=fig))
    means = {"sasrec-ce": 0.085, "tiger": 0.091, "pop": 0.001}
    rows = [{"point": {}, "model": m, "history kept": {"mean": {"recall@10": v}, "ci95": {"recall@10": [v - 0.005, v + 0.005]}}}
            for m, v in means.items()]
    experiment_table.plot_levers(tmp_path / "p.png", rows, [], {})
    ax = shown["fig"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(means)
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [float(d.get_xdata()[0]) for d in dots] == list(means.values())


def test_a_list_of_levers_is_plotted_by_what_each_point_changes(tmp_path, monkeypatch):
    """Points that change one lever at a time (the first key constant): one row per point, named by
    the keys it changes from the baseline, the baseline's mean drawn as a dashed line."""
    shown = {}
    monkeypatch.setattr(experiment_table, "save", lambda fig, path, **kw: shown.update(fig=fig))
    keys = ["compare.settings.tiger.max_epochs", "compare.settings.tiger.d_model", "compare.settings.tiger.dropout"]
    base = {keys[0]: 26, keys[1]: 64, keys[2]: 0.1}
    points = [base, base | {keys[1]: 128}, base | {keys[2]: 0.2}]
    means = [0.080, 0.088, 0.072]
    rows = [{"point": p, "model": "tiger", "split": "val",
             "history kept": {"mean": {"recall@10": m}, "ci95": {"recall@10": [m - 0.003, m + 0.004]}}}
            for p, m in zip(points, means)]
    experiment_table.plot_levers(tmp_path / "p.png", rows, keys, base)
    ax = shown["fig"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tiger: baseline", "tiger: d_model=128", "tiger: dropout=0.2"]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [(float(d.get_xdata()[0]), float(d.get_ydata()[0])) for d in dots] == list(zip(means, [0.0, 1.0, 2.0]))
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and float(dashed[0].get_xdata()[0]) == 0.080  # the baseline's mean
    assert ax.yaxis_inverted() and "val Recall@10" in ax.get_xlabel()
    # without a baseline, a row is named by the keys that vary at all
    experiment_table.plot_levers(tmp_path / "p.png", rows, keys, {})
    names = [t.get_text() for t in shown["fig"].axes[0].get_yticklabels()]
    assert names[1] == "tiger: d_model=128, dropout=0.1" and not [ln for ln in shown["fig"].axes[0].get_lines()
                                                                  if ln.get_linestyle() == "--"]


@pytest.mark.parametrize("epochs", [1, 2], ids=["levers", "sweep"])
def test_a_lever_recipes_paired_tests_name_what_each_row_changes(tmp_path, epochs):
    """A recipe of points names its tested rows by the keys that differ from the baseline point in
    experiment.md, and keeps the folder tags in experiment.json: points that change one lever at a
    time, and points that sweep the first key (the plot's x axis) while changing others."""
    data = json.loads(json.dumps(RECIPE))
    data["compare"] |= {"models": ["sid-gru"], "seeds": [0]}
    base = {"compare.settings.sid-gru.max_epochs": 1, "compare.settings.sid-gru.d_model": 16}
    other = {"compare.settings.sid-gru.max_epochs": epochs, "compare.settings.sid-gru.d_model": 32}
    data["experiment"] = {"description": "toy levers", "points": [base, other], "baseline": base}
    recipe = tmp_path / "toy-levers.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["experiment", str(recipe), "--out", str(out), "--runs", str(out), "--allow-dirty"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    tests = json.loads((out / "experiment.json").read_text())["tests"]
    changed = "d_model=32" if epochs == 1 else "max_epochs=2, d_model=32"
    assert len(tests) == 4 and {t["model"] for t in tests} == {f"sid-gru@max_epochs={epochs},d_model=32"}
    assert {(t["label"], t["baseline_label"]) for t in tests} == {(f"sid-gru: {changed}", "sid-gru: baseline")}
    md = (out / "experiment.md").read_text()
    assert f"| history kept | sid-gru: {changed} | sid-gru: baseline | recall@10 |" in md
    assert f"| sid-gru@max_epochs={epochs},d_model=32 |" not in md.split("## Paired tests")[1]


def test_paired_tests_recorded_without_names_are_named_by_what_each_row_changes():
    """Records written before tests carried names (tiger-long's) get them where they are shown: the
    keys that differ from the baseline point; a name already recorded is kept, and a grid recipe's
    short tags are left as they are."""
    keys = ["compare.settings.tiger.max_epochs", "compare.settings.tiger.d_model"]
    rows = [{"row": f"tiger@max_epochs={e},d_model={d}", "model": "tiger", "point": dict(zip(keys, (e, d)))}
            for e, d in [(80, 64), (60, 128)]]
    recipe = {"grid": {k: [] for k in keys}, "points": [r["point"] for r in rows], "baseline": rows[0]["point"]}
    tests = [{"model": rows[1]["row"], "baseline": rows[0]["row"]},
             {"model": rows[1]["row"], "baseline": rows[0]["row"], "label": "kept", "baseline_label": "kept too"}]
    experiment_table.name_tests(tests, rows, recipe)
    assert (tests[0]["label"], tests[0]["baseline_label"]) == ("tiger: max_epochs=60, d_model=128", "tiger: baseline")
    assert (tests[1]["label"], tests[1]["baseline_label"]) == ("kept", "kept too")
    grid = [{"model": rows[1]["row"], "baseline": rows[0]["row"]}]
    assert experiment_table.name_tests(grid, rows, {"grid": recipe["grid"], "points": []}) == [
        {"model": rows[1]["row"], "baseline": rows[0]["row"]}]
