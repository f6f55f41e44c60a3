"""Time-to-quality curves come from the training logs, point for point."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core import trainlog
from semid.core.errors import DataError
from semid.experiments import curves


def _folder(tmp_path, logs: dict[str, str], training: dict, run: str = "run", model: str = "m",
            git: dict | None = None, dataset: str | None = None) -> None:
    folder = tmp_path / run / "models" / model
    if dataset:  # what prepare records: the dataset a run folder holds, whatever the folder's name
        (tmp_path / run / "data").mkdir(parents=True, exist_ok=True)
        (tmp_path / run / "data" / "manifest.json").write_text(json.dumps({"config": {"dataset": dataset}}))
    for rel, text in logs.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    meta = {"kind": "sasrec", "training": training, "provenance": {"git": git or {"commit": "a" * 40, "dirty": False}}}
    (folder / "config.json").write_text(json.dumps(meta))


def test_points_use_logged_seconds_times_threads(tmp_path):
    """Logs of every process carry the seconds trained so far (val/train_s, counted on across a resume)."""
    header = "epoch,step,train/loss,val/recall@10,val/train_s\n"
    _folder(tmp_path, {"logs/metrics.csv": header + "0,9,5.0,,\n0,9,,0.10,30\n1,19,4.0,,\n1,19,,0.20,90\n",
                       "logs/resume-x/metrics.csv": header + "2,29,,0.25,160\n"},
            {"threads": 2, "train_wall_s": 200, "resumed_at_s": 100, "steps": 30})
    folder = tmp_path / "run" / "models" / "m"
    c = curves.curve(folder)
    assert not c["estimated"] and c["how"] == "measured"
    assert [(p["step"], p["minutes"], p["recall@10"]) for p in c["points"]] == [(9, 1.0, 0.10), (19, 3.0, 0.20), (29, 5.333, 0.25)]
    assert trainlog.train_seconds(folder, {"train_wall_s": 200, "resumed_at_s": 100}) == (200, "measured")


@pytest.mark.parametrize("killed", ["", "epoch,st", "epoch,step,train/loss,val/recall@10,val/train_s\r\n2,29,,0.2"])
def test_a_log_cut_by_a_kill_is_read_up_to_its_last_whole_line(killed, tmp_path):
    """A process killed before its logger wrote anything (an empty file), inside the header, or
    inside a row: the continued run's time and curve come from the whole lines, not an error."""
    header = "epoch,step,train/loss,val/recall@10,val/train_s\r\n"
    _folder(tmp_path, {"logs/metrics.csv": header + "0,9,,0.10,30\r\n1,19,,0.20,90\r\n",
                       "logs/resume-x/metrics.csv": killed,
                       "logs/resume-y/metrics.csv": header + "2,29,,0.25,160\r\n"},
            {"threads": 1, "train_wall_s": 200, "resumed_at_s": 100, "steps": 30})
    folder = tmp_path / "run" / "models" / "m"
    parts = trainlog.log_parts(folder)
    assert len(parts) == 2 and [p.height for p in parts] == [2, 1]
    assert [(p["step"], p["recall@10"]) for p in curves.curve(folder)["points"]] == [(9, 0.10), (19, 0.20), (29, 0.25)]


def test_older_resumed_logs_are_stitched_not_restarted(tmp_path):
    """Older logs restarted val/elapsed_s at 0 in each process and config.json kept only the last
    process's seconds: the earlier process is counted at its own seconds per step up to the step the
    next one resumed from (its first logged step), and marked."""
    header = "epoch,step,train/loss,val/recall@10,val/elapsed_s\n"
    _folder(tmp_path, {"logs/metrics.csv": header + "0,9,,0.10,30\n1,19,,0.20,95\n",
                       "logs/resume-x/metrics.csv": header + "2,20,3.0,,\n2,29,,0.25,60\n"},
            {"threads": 1, "train_wall_s": 70, "steps": 30})
    folder = tmp_path / "run" / "models" / "m"
    c = curves.curve(folder)
    assert c["estimated"] and c["how"] == "stitched"
    offset = 95 / 19 * 20  # the first process's 5 s a step, up to step 20
    assert [p["minutes"] for p in c["points"]] == pytest.approx([0.5, 95 / 60, (offset + 60) / 60], abs=1e-3)
    assert trainlog.train_seconds(folder, {"train_wall_s": 70, "steps": 30}) == (round(offset + 70, 1), "stitched")


def test_old_logs_are_placed_by_step_share_and_marked(tmp_path):
    _folder(tmp_path, {"logs/metrics.csv": "epoch,step,val/recall@10\n0,10,0.1\n1,20,0.3\n"}, {"threads": 1, "train_wall_s": 120, "steps": 20})
    c = curves.curve(tmp_path / "run" / "models" / "m")
    assert c["estimated"] and [p["minutes"] for p in c["points"]] == [1.0, 2.0]


def test_a_folder_without_validations_is_a_clear_error(tmp_path):
    _folder(tmp_path, {"logs/metrics.csv": "epoch,step,train/loss\n0,1,3.0\n"}, {})
    with pytest.raises(DataError, match="no validation rows"):
        curves.curve(tmp_path / "run" / "models" / "m")
    with pytest.raises(DataError, match="no trained model"):
        curves.curve(tmp_path / "run" / "models" / "missing")


LOG = "epoch,step,val/recall@10,val/train_s\n0,10,0.1,60\n1,20,0.3,120\n"


def test_model_folders_of_several_runs_share_a_plot_with_labels(tmp_path):
    """Paths of model folders (here of two run folders of one dataset) are plotted together, each
    curve under its label, with the folder and training it came from; the plot goes to the first
    model's run folder when no --out is named."""
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {"threads": 2, "epochs": 2}, run="beauty", model="tiger",
            dataset="beauty")
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {"threads": 1, "epochs": 2}, run="beauty-main", model="tiger",
            dataset="beauty")
    res = CliRunner().invoke(app, ["curves", str(tmp_path / "beauty" / "models" / "tiger"),
                                   str(tmp_path / "beauty-main" / "models" / "tiger"), "--label", "TIGER 2 threads",
                                   "--label", "TIGER 1 thread"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "beauty" / "compare" / "time_to_quality.json").read_text())
    assert [c["label"] for c in doc["curves"]] == ["TIGER 2 threads", "TIGER 1 thread"]
    assert [[p["minutes"] for p in c["points"]] for c in doc["curves"]] == [[2.0, 4.0], [1.0, 2.0]]
    assert doc["dataset"] == "beauty" and doc["curves"][1]["folder"].endswith("beauty-main/models/tiger")
    assert doc["curves"][0]["training"]["epochs"] == 2


def test_curves_refuse_mixed_datasets_and_miscounted_labels(tmp_path):
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {}, run="beauty")
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {}, run="sports")
    a, b = str(tmp_path / "beauty" / "models" / "m"), str(tmp_path / "sports" / "models" / "m")
    with pytest.raises(DataError, match="different datasets"):
        curves.run(None, [a, b])
    with pytest.raises(DataError, match="1 labels for 2 models"):
        curves.run(None, [a, a], labels=["x"])


def test_record_copies_the_plot_only_from_committed_trainings(tmp_path, monkeypatch):
    """--record writes results/<dataset>/time_to_quality.{png,json}; a model trained from a dirty
    tree is refused (unless allowed), so every recorded curve names the code behind it."""
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {}, run="beauty", model="clean")
    _folder(tmp_path, {"logs/metrics.csv": LOG}, {}, run="beauty", model="dirty", git={"commit": "b" * 40, "dirty": True})
    monkeypatch.setattr(curves.artifacts, "provenance", lambda: {"git": {"commit": "c" * 40, "dirty": False}})
    png = curves.run(tmp_path / "beauty", ["clean"])
    written = curves.record(png, root=tmp_path / "results")
    assert sorted(p.name for p in written) == ["time_to_quality.json", "time_to_quality.png"]
    assert (tmp_path / "results" / "beauty" / "time_to_quality.png").read_bytes() == png.read_bytes()
    png = curves.run(tmp_path / "beauty", ["clean", "dirty"])
    with pytest.raises(DataError, match="uncommitted changes"):
        curves.record(png, root=tmp_path / "results2")
    assert not (tmp_path / "results2").exists()
    assert curves.record(png, root=tmp_path / "results2", allow_dirty=True)


@pytest.mark.slow
def test_curves_of_a_trained_toy_model(tmp_path):
    out = tmp_path / "toy"
    runner = CliRunner()
    res = runner.invoke(app, ["prepare", "--dataset", "toy", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "sasrec", "--out", str(out), "max_epochs=2", "threads=1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["curves", "--out", str(out), "sasrec-ce"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    doc = json.loads((out / "compare" / "time_to_quality.json").read_text())
    log = pl.read_csv(next((out / "models" / "sasrec-ce" / "logs").glob("**/metrics.csv"))).drop_nulls("val/recall@10")
    assert [p["recall@10"] for p in doc["curves"][0]["points"]] == pytest.approx(log["val/recall@10"].to_list())
    assert not doc["curves"][0]["estimated"] and (out / "compare" / "time_to_quality.png").stat().st_size > 1000
