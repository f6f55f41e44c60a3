"""Time to quality: validation Recall@10 against CPU-minutes of training, from training logs.

    semid curves --out runs/beauty sasrec-ce sid-gru tiger     # → RUN/compare/time_to_quality.{png,json}
    semid curves runs/beauty-main/models/tiger runs/beauty/models/sasrec-ce --label "TIGER cpu" \
        --label SASRec-CE --record results                      # folders of several runs, one dataset

A model is a folder name under ``RUN/models`` or the path of a model folder (``config.json``
inside), so curves of several run folders of one dataset share a plot. ``record`` copies the
plot and its JSON to ``results/<dataset>/`` once every model's training came from a committed tree.

Each model folder's ``logs/**/metrics.csv`` (Lightning's CSV logs, resumed runs included) gives
one point per validation. The x axis is thread-minutes: training seconds × torch threads / 60,
the seconds behind each validation over every process of a resumed run
(:func:`semid.core.trainlog.validation_times`: measured, or for older logs stitched across resumes
or placed by steps, and then labelled so). An ensemble's curve (SID-GRU ``members > 1``) is its
first member's, flat while the other members train, and ends at the ensemble's own validation
Recall@10 after all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semid.core import artifacts, trainlog
from semid.core.errors import DataError
from semid.core.figures import pyplot, save
from semid.core.run import MODEL_CONFIG, RunFolder
from semid.evaluate.results import check_clean


def curve(folder: Path, label: str | None = None) -> dict[str, Any]:
    """``{"model", "label", "folder", "threads", "estimated", "how", "points": [{"step", "epoch",
    "minutes", "recall@10"}], "training", "config", "git"}``."""
    meta_file = folder / MODEL_CONFIG
    if not meta_file.is_file():
        raise DataError(f"{folder} holds no trained model (no {MODEL_CONFIG})")
    meta = artifacts.read_json(meta_file)
    training = meta.get("training") or {}
    members = training.get("members") or []
    logs, logged = (folder / "member0", members[0]) if members else (folder, training)
    points, how = trainlog.validation_times(logs, logged)
    if members and points:  # an ensemble: its first member's curve, flat while the others train, then the ensemble
        points.append({"step": training["steps"], "epoch": training["epochs"], "seconds": training["train_wall_s"],
                       "recall@10": training["best_val_recall@10"]})
    if not points:
        raise DataError(f"{folder}: no validation rows in logs/**/metrics.csv (an untrained model, or logs deleted)")
    threads = int(training.get("threads") or 1)
    points = [{"step": p["step"], "epoch": p["epoch"], "minutes": round(p["seconds"] * threads / 60, 3),
               "recall@10": p["recall@10"]} for p in points]
    keep = ("epochs", "steps", "train_wall_s", "stopped_by", "threads", "precision", "val_users", "best_val_recall@10")
    return {"model": folder.name, "label": label or folder.name, "folder": str(folder), "threads": threads,
            "estimated": how != "measured", "how": how, "points": points,
            "training": {k: training[k] for k in keep if k in training}, "config": meta.get("config"),
            "git": (meta.get("provenance") or {}).get("git")}


def is_model_path(model: str) -> bool:
    """Whether a model argument is the path of a trained model folder (``config.json`` inside)
    rather than a folder name under ``RUN/models``."""
    return (Path(model) / MODEL_CONFIG).is_file()


def model_folder(run: RunFolder | None, model: str) -> Path:
    """A model folder's path (``config.json`` inside), else the name of one under ``RUN/models``."""
    return Path(model) if is_model_path(model) or run is None else run.model_dir(model)


def run(run_dir: Path | RunFolder | None, models: list[str], out: Path | None = None,
        labels: list[str] | None = None) -> Path:
    """Plot the models' curves into ``out`` (default ``RUN/compare``, else the first model's run
    folder's); returns the PNG."""
    if not models:
        raise DataError("name at least one model: a folder name under RUN/models or a model folder's path")
    if labels and len(labels) != len(models):
        raise DataError(f"{len(labels)} labels for {len(models)} models: give one --label per model, in order")
    run = RunFolder(run_dir) if run_dir is not None else None
    folders = [model_folder(run, m) for m in models]
    curves = [curve(f, labels[i] if labels else None) for i, f in enumerate(folders)]
    datasets = sorted({RunFolder(f.parent.parent).dataset() for f in folders})
    if len(datasets) > 1:
        raise DataError(f"the models come from runs of different datasets ({', '.join(datasets)}): one plot is one dataset")
    out = Path(out) if out else (run or RunFolder(folders[0].parent.parent)).compare
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for c in curves:
        label = c["label"] + {"stitched": " (time stitched across resumes)", "steps": " (time placed by steps)"}.get(c["how"], "")
        ax.plot([p["minutes"] for p in c["points"]], [p["recall@10"] for p in c["points"]], marker="o", ms=3, label=label)
    ax.set_xlabel("training thread-minutes (wall × threads)")
    ax.set_ylabel("validation Recall@10")
    ax.set_title(f"{datasets[0]}: time to quality", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = out / "time_to_quality.png"
    save(fig, png, dpi=120)
    artifacts.write_json(out / "time_to_quality.json", {"dataset": datasets[0], "curves": curves, **artifacts.provenance()})
    return png


def record(png: Path, root: Path = Path("results"), allow_dirty: bool = False) -> list[Path]:
    """Copy a drawn curve (PNG + JSON) to ``root/<dataset>/``; refused (unless ``allow_dirty``) when
    a model's training or the plot itself came from a tree with uncommitted changes."""
    doc_file = png.with_suffix(".json")
    doc = artifacts.read_json(doc_file)
    check_clean([c.get("git") or {} for c in doc["curves"]] + [doc.get("git") or {}], allow_dirty)
    dest = Path(root) / str(doc["dataset"])
    written = []
    for src in (png, doc_file):
        artifacts.write_bytes(dest / src.name, src.read_bytes())
        written.append(dest / src.name)
    return written


__all__ = ["curve", "is_model_path", "model_folder", "record", "run"]
