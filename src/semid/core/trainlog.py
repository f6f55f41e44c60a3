"""A model folder's training time, across the processes of a resumed run, from its logs.

A run killed and continued with ``--resume`` leaves one CSV log per process: ``logs/metrics.csv``,
then ``logs/resume-<time>/metrics.csv``. Folders trained since 0.1's time fix carry the whole
training time themselves: checkpoints keep the seconds trained so far, the loop logs them at each
validation (``val/train_s``) and ``config.json``'s ``training.train_wall_s`` counts every process
(``training.resumed_at_s``: the part before the last resume). Older folders logged each process's
own seconds (``val/elapsed_s``, restarting at 0) and recorded only the last process's
``train_wall_s``; for them the earlier processes are placed by their own seconds per step up to
the step the next one resumed from (``how``: ``"stitched"``), and logs without times by the last
process's seconds per step (``"steps"``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl

METRIC = "val/recall@10"
TRAIN_S = "val/train_s"  # seconds trained so far, every process included
ELAPSED_S = "val/elapsed_s"  # older logs: this process's seconds since its first step


def log_parts(folder: Path) -> list[pl.DataFrame]:
    """The CSV logs of a model folder, oldest process first. A process killed before its logger wrote
    a row leaves an empty or header-only file (skipped); one killed while writing, a cut last line
    (dropped)."""
    files = [folder / "logs" / "metrics.csv"] + sorted((folder / "logs").glob("resume-*/metrics.csv"))
    parts = []
    for f in files:
        text = f.read_text(errors="replace") if f.is_file() else ""
        whole = text[:text.rfind("\n") + 1]  # up to the last complete line
        df = pl.read_csv(io.StringIO(whole), infer_schema_length=None) if whole.strip() else None
        if df is not None and df.height:
            parts.append(df)
    return parts


def _rows(df: pl.DataFrame, col: str) -> pl.DataFrame:
    if col == ELAPSED_S and ELAPSED_S not in df.columns and TRAIN_S in df.columns:
        df = df.rename({TRAIN_S: ELAPSED_S})  # a process resumed from an untimed checkpoint: its own seconds
    cols = ["step", "epoch", METRIC] + ([col] if col in df.columns else [])
    return df.select([c for c in cols if c in df.columns]).drop_nulls(METRIC) if METRIC in df.columns else pl.DataFrame()


def validation_times(folder: Path, training: dict[str, Any]) -> tuple[list[dict[str, float]], str]:
    """``([{"step", "epoch", "recall@10", "seconds"}], how)``: each validation with the training
    seconds behind it; how is ``measured``, ``stitched`` or ``steps`` (see the module)."""
    parts = log_parts(folder)
    if not any(METRIC in p.columns for p in parts):
        return [], "measured"
    if all(TRAIN_S in p.columns for p in parts if METRIC in p.columns):
        df = pl.concat([_rows(p, TRAIN_S) for p in parts if METRIC in p.columns])
        return _points(df, df[TRAIN_S].cast(pl.Float64).to_list()), "measured"
    offsets, rates, how = _stitch(parts, training)
    points = []
    for j, (p, off, rate) in enumerate(zip(parts, offsets, rates)):
        rows = _rows(p, ELAPSED_S)
        if not rows.height:
            continue
        start = _start_step(p, j)
        secs = [off + (float(e) if e is not None else rate * (s - start))
                for s, e in zip(rows["step"], rows[ELAPSED_S] if ELAPSED_S in rows.columns else [None] * rows.height)]
        points += _points(rows, secs)
    by_step = {pt["step"]: pt for pt in points}  # a step validated again after a resume keeps the later row
    return [by_step[s] for s in sorted(by_step)], how


def train_seconds(folder: Path, training: dict[str, Any]) -> tuple[float | None, str]:
    """``(seconds, how)``: the training time behind the folder's model, every process included."""
    wall = training.get("train_wall_s")
    parts = log_parts(folder)
    if wall is None or "resumed_at_s" in training or len(parts) < 2:
        return wall, "measured"
    offsets, _, how = _stitch(parts, training)
    return round(offsets[-1] + float(wall), 1), how


def _start_step(df: pl.DataFrame, index: int) -> int:
    """The step a process started from: 0 for the first, about its first logged step for a resumed one."""
    return int(df["step"].min()) if index and "step" in df.columns and df.height else 0


def _end_step(df: pl.DataFrame) -> int:
    return int(df["step"].max()) if "step" in df.columns and df.height else 0


def _stitch(parts: list[pl.DataFrame], training: dict[str, Any]) -> tuple[list[float], list[float], str]:
    """Per log part: seconds trained before it, and its seconds per step."""
    rates: list[float | None] = []
    for j, p in enumerate(parts):
        rows = _rows(p, ELAPSED_S)
        if ELAPSED_S in rows.columns and rows[ELAPSED_S].drop_nulls().len():
            last = rows.drop_nulls(ELAPSED_S).tail(1)
            steps = max(1, int(last["step"][0]) - _start_step(p, j))
            rates.append(float(last[ELAPSED_S][0]) / steps)
        else:
            rates.append(None)
    steps_last = max(1, int(training.get("steps") or _end_step(parts[-1])) - _start_step(parts[-1], len(parts) - 1))
    fallback = float(training.get("train_wall_s") or 0.0) / steps_last
    untimed = any(r is None for r in rates[:-1]) or (rates[-1] is None and _rows(parts[-1], ELAPSED_S).height > 0)
    how = "steps" if untimed else "measured" if len(parts) == 1 else "stitched"
    filled = [r if r is not None else fallback for r in rates]
    offsets = [0.0]
    for j in range(1, len(parts)):
        offsets.append(offsets[-1] + filled[j - 1] * max(0, _start_step(parts[j], j) - _start_step(parts[j - 1], j - 1)))
    return offsets, filled, how


def _points(rows: pl.DataFrame, seconds: list[float]) -> list[dict[str, float]]:
    return [{"step": int(s), "epoch": int(e), "recall@10": float(r), "seconds": round(float(t), 1)}
            for s, e, r, t in zip(rows["step"], rows["epoch"], rows[METRIC], seconds)]
