"""Time to quality: validation Recall@10 against CPU-minutes of training, from training logs.

    semid curves --out runs/beauty sasrec-ce sid-gru tiger     # → RUN/compare/time_to_quality.{png,json}

Each model folder's ``logs/**/metrics.csv`` (Lightning's CSV logs, resumed runs included) gives
one point per validation. The x axis is thread-minutes: training seconds × torch threads / 60,
the seconds behind each validation over every process of a resumed run
(:func:`semid.core.trainlog.validation_times`: measured, or for older logs stitched across resumes
or placed by steps, and then labelled so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semid.core import artifacts, trainlog
from semid.core.errors import DataError
from semid.core.figures import pyplot, save
from semid.core.run import MODEL_CONFIG, RunFolder


def curve(folder: Path) -> dict[str, Any]:
    """``{"model", "threads", "estimated", "how", "points": [{"step", "epoch", "minutes", "recall@10"}]}``."""
    meta_file = folder / MODEL_CONFIG
    if not meta_file.is_file():
        raise DataError(f"{folder} holds no trained model (no {MODEL_CONFIG})")
    training = artifacts.read_json(meta_file).get("training") or {}
    points, how = trainlog.validation_times(folder, training)
    if not points:
        raise DataError(f"{folder}: no validation rows in logs/**/metrics.csv (an untrained model, or logs deleted)")
    threads = int(training.get("threads") or 1)
    points = [{"step": p["step"], "epoch": p["epoch"], "minutes": round(p["seconds"] * threads / 60, 3),
               "recall@10": p["recall@10"]} for p in points]
    return {"model": folder.name, "threads": threads, "estimated": how != "measured", "how": how, "points": points}


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
        label = c["model"] + {"stitched": " (time stitched across resumes)", "steps": " (time placed by steps)"}.get(c["how"], "")
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
