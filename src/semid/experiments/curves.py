"""Time to quality: validation Recall@10 against CPU-minutes of training, from training logs.

    semid curves --out runs/beauty sasrec-ce sid-gru tiger     # → RUN/compare/time_to_quality.{png,json}

Each model folder's ``logs/**/metrics.csv`` (Lightning's CSV logs, resumed runs included) gives
one point per validation. The x axis is thread-minutes: wall seconds × torch threads / 60, with
the wall seconds logged at each validation (``val/elapsed_s``); logs written before that column
existed are placed by their step share of the recorded training time, and say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.figures import pyplot, save
from semid.core.run import MODEL_CONFIG, RunFolder

METRIC = "val/recall@10"


def curve(folder: Path) -> dict[str, Any]:
    """``{"model", "threads", "estimated", "points": [{"step", "epoch", "minutes", "recall@10"}]}``."""
    meta_file = folder / MODEL_CONFIG
    if not meta_file.is_file():
        raise DataError(f"{folder} holds no trained model (no {MODEL_CONFIG})")
    training = artifacts.read_json(meta_file).get("training") or {}
    logs = sorted(folder.glob("logs/**/metrics.csv"))
    frames = [pl.read_csv(f, infer_schema_length=None) for f in logs]
    frames = [f for f in frames if METRIC in f.columns]
    if not frames:
        raise DataError(f"{folder}: no validation rows in logs/**/metrics.csv (an untrained model, or logs deleted)")
    cols = ["step", "epoch", METRIC] + (["val/elapsed_s"] if all("val/elapsed_s" in f.columns for f in frames) else [])
    df = pl.concat([f.select(cols) for f in frames]).drop_nulls(METRIC).unique("step", keep="last").sort("step")
    threads = int(training.get("threads") or 1)
    estimated = "val/elapsed_s" not in cols
    if estimated:  # older logs: the step's share of the recorded training time
        wall, last = float(training.get("train_wall_s") or 0.0), max(1, int(training.get("steps") or df["step"].max()))
        seconds = df["step"].cast(pl.Float64) * wall / last
    else:
        seconds = df["val/elapsed_s"].cast(pl.Float64)
    points = [{"step": int(s), "epoch": int(e), "minutes": round(float(t) * threads / 60, 3), "recall@10": float(r)}
              for s, e, t, r in zip(df["step"], df["epoch"], seconds, df[METRIC])]
    return {"model": folder.name, "threads": threads, "estimated": estimated, "points": points}


def run(run_dir: Path | RunFolder, models: list[str], out: Path | None = None) -> Path:
    """Plot the models' curves into ``out`` (default ``RUN/compare``); returns the PNG."""
    run = RunFolder(run_dir)
    if not models:
        raise DataError("name at least one model folder under RUN/models")
    curves = [curve(run.model_dir(m)) for m in models]
    out = Path(out) if out else run.compare
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for c in curves:
        label = c["model"] + (" (time estimated from steps)" if c["estimated"] else "")
        ax.plot([p["minutes"] for p in c["points"]], [p["recall@10"] for p in c["points"]], marker="o", ms=3, label=label)
    ax.set_xlabel("training thread-minutes (wall × threads)")
    ax.set_ylabel("validation Recall@10")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = out / "time_to_quality.png"
    save(fig, png, dpi=120)
    artifacts.write_json(out / "time_to_quality.json", {"curves": curves, **artifacts.provenance()})
    return png


__all__ = ["curve", "run"]
