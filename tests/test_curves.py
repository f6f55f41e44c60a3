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


def _folder(tmp_path, logs: dict[str, str], training: dict) -> None:
    folder = tmp_path / "run" / "models" / "m"
    for rel, text in logs.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / "config.json").write_text(json.dumps({"kind": "sasrec", "training": training}))


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
