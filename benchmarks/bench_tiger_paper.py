"""What TIGER's ``paper`` preset costs on the machine at hand: one epoch with its full validation,
then a second epoch through ``--resume``, timed through the real training path, and the expected
time of the preset's whole schedule (200k steps of 256) worked out from them.

The preset is the paper's recipe (4 + 4 layers, d 128, bidirectional encoder, Adafactor, validation
on every validation user with beam 20 after each epoch). The run trains ``--epochs`` epochs
(``max_epochs``), stops, and resumes from its ``last.ckpt`` for ``--epochs`` more, which also
checks that a stopped run continues where it stopped (the step count and the seconds before the
resume carry over). Reported per epoch: steps, training targets/s (the loop's own log), the
epoch's wall seconds with its validation, the validation's share, and validation Recall@10.

Expected time of the schedule: ``max_steps / steps per epoch`` epochs at the measured seconds per
epoch, validation included; the preset's early stopping (patience 10) can only shorten it.

Usage: ``python benchmarks/bench_tiger_paper.py --run runs/beauty-ids [--accelerator gpu] [--epochs 1] [--precision 32]``
(a run folder with ``data/`` and Semantic IDs). Figures go to ``benchmarks/results/tiger_paper_<accelerator>.json``
and ``.md``; the model folder (``RUN/models/bench-paper``) is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import shutil

import polars as pl

import record
from semid.models import registry
from semid.models import stage as model_stage

NAME = "bench-paper"


def phase(run: str, cfg, resume: bool) -> dict:
    folder = model_stage.train("tiger", cfg, run, force=not resume, resume=resume)
    meta = json.loads((folder / "config.json").read_text())["training"]
    log = pl.read_csv(max((folder / "logs").rglob("metrics.csv"), key=lambda f: f.stat().st_mtime))  # a resume logs apart
    speed = log.drop_nulls("train/examples_per_s")["train/examples_per_s"]
    val = log.drop_nulls("val/recall@10")["val/recall@10"] if "val/recall@10" in log.columns else pl.Series([])
    return {"epochs": meta["epochs"], "steps": meta["steps"], "train_wall_s": meta["train_wall_s"],
            "resumed_at_s": meta.get("resumed_at_s"), "examples_per_s": round(float(speed[-1]), 1),
            "val_recall@10": round(float(val[-1]), 4) if len(val) else None, "precision": meta["precision"],
            "device": meta["device"], "stopped_by": meta["stopped_by"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/beauty-ids")
    ap.add_argument("--ids", default="rqvae-3x256", help="a folder under RUN/ids")
    ap.add_argument("--accelerator", choices=["cpu", "gpu"], default="gpu")
    ap.add_argument("--epochs", type=int, default=1, help="epochs before the stop, and again after the resume")
    ap.add_argument("--precision", choices=["auto", "32", "bf16-mixed", "16-mixed"], default="auto",
                    help="training precision; other than auto, the record's name says it (tiger_paper_gpu_32)")
    ap.add_argument("--keep", action="store_true", help="keep RUN/models/bench-paper")
    a = ap.parse_args()
    spec = registry.get("tiger")

    def cfg(epochs: int):
        return spec.config(preset="paper", ids=a.ids, accelerator=a.accelerator, max_epochs=epochs, name=NAME,
                           precision=a.precision)

    first = phase(a.run, cfg(a.epochs), resume=False)
    second = phase(a.run, cfg(2 * a.epochs), resume=True)
    steps_per_epoch = first["steps"] / first["epochs"]
    if second["steps"] != 2 * first["steps"]:
        raise SystemExit(f"the resumed run did not continue where it stopped: {first['steps']} steps, then {second['steps']}")
    epoch_s = second["train_wall_s"] / second["epochs"]  # both phases, validations included
    targets = steps_per_epoch * spec.config(preset="paper").batch_size
    train_s = targets / first["examples_per_s"]
    max_steps = spec.config(preset="paper").max_steps
    hours = max_steps / steps_per_epoch * epoch_s / 3600
    gpu = None
    if a.accelerator == "gpu":
        import torch

        gpu = f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    rows = [{"phase": "first run", **first}, {"phase": "after --resume", **second}]
    summary = {"steps_per_epoch": steps_per_epoch, "epoch_s_with_validation": round(epoch_s, 1),
               "train_s_per_epoch_at_logged_rate": round(train_s, 1), "validation_share": round(1 - train_s / epoch_s, 2),
               "max_steps": max_steps, "expected_hours_for_max_steps": round(hours, 2)}
    print(json.dumps(summary))
    if not a.keep:
        shutil.rmtree(f"{a.run}/models/{NAME}", ignore_errors=True)
    where = f"one {gpu}" if gpu else "the CPU"
    record.write(f"tiger_paper_{a.accelerator}" + ("" if a.precision == "auto" else f"_{a.precision}"),
                 f"TIGER's paper preset on {a.run} ({a.ids}) on {where}: {a.epochs} epoch(s), a stop, then --resume for "
                 f"{a.epochs} more; expected time of its {max_steps:,} steps: {hours:.1f} h ({steps_per_epoch:.0f} steps and "
                 f"{epoch_s:.0f} s an epoch, validation on every validation user included)",
                 rows + [{"phase": "summary", **summary}],
                 ["phase", "epochs", "steps", "train s (all processes)", "targets/s", "val Recall@10", "precision"],
                 [[r["phase"], r["epochs"], r["steps"], r["train_wall_s"], r["examples_per_s"], r["val_recall@10"], r["precision"]]
                  for r in rows], note=f", {gpu}" if gpu else "", **({"gpu": gpu} if gpu else {}))


if __name__ == "__main__":
    main()
