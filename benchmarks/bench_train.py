"""Training throughput of TIGER (``cpu`` preset), SASRec-CE and SID-GRU: next-item targets per second through
the real training path (``semid train``'s stage and Lightning loop), and what each CPU lever buys.

For each model, the same ``--steps`` optimizer steps on the run's training sequences under each
setting, in a fresh subprocess (one torch per setting), against the model's default measured in
the same run (1 thread, fp32, its default batch size):

* 2 threads (``threads=2``);
* bf16 autocast on the CPU (``precision=bf16-mixed``);
* twice the batch size (``batch_size=2×``: fewer, larger steps);
* ``torch.compile`` of the network's forward (``compile=true``; its one-off compile falls in the first
  steps, which is why the steady rate below is the one to compare);
* TIGER only: one encoder position per history item (``encoder_input=items``) instead of one per ID token;
* SASRec only: a sampled softmax of 1,024 negatives (``negatives=1024``) instead of the full one.

With ``--accelerator gpu`` the settings are a GPU's (figures go to ``train_gpu.json`` / ``.md``):
the default there (``precision=auto``: bf16 autocast), fp32, four times the batch size, and TIGER's
``paper`` preset (the 4 + 4-layer bidirectional model whose 200k steps the paper trained) in bf16
and fp32; the ratio is to the model's GPU default measured in the same run.

Throughput is the training loop's own ``train/examples_per_s`` (targets seen / time since the first
step) from ``logs/metrics.csv`` at the last step, and the **steady** rate over the second half of the
steps (from the same log's cumulative ``train/targets``: warm-up, allocation and compilation left
out); ratios are of steady rates. Validation never runs (the steps end within the first
epoch). The benchmark's model folders (``RUN/models/bench-*``) are removed afterwards.

Usage: ``python benchmarks/bench_train.py --run runs/beauty-ids [--steps 400] [--accelerator gpu]`` (a run folder with
``data/`` and Semantic IDs, ``--ids rqvae-3x256`` by default: ``semid run`` or ``semid ids train``). Figures go to
``benchmarks/results/train.json`` and ``train.md``; the machine's load is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import record

SETTINGS = {
    "sasrec": [("1 thread, fp32 (default)", {}), ("2 threads", {"threads": 2}),
               ("bf16 autocast", {"precision": "bf16-mixed"}), ("batch ×2", {"batch_size": "x2"}),
               ("sampled softmax, 1,024 negatives", {"negatives": 1024}), ("torch.compile", {"compile": True})],
    "tiger": [("1 thread, fp32 (default)", {}), ("2 threads", {"threads": 2}),
              ("bf16 autocast", {"precision": "bf16-mixed"}), ("batch ×2", {"batch_size": "x2"}),
              ("torch.compile", {"compile": True}), ("item vectors as encoder input", {"encoder_input": "items"})],
    "sid-gru": [("1 thread, fp32 (default)", {}), ("2 threads", {"threads": 2}), ("torch.compile", {"compile": True})],
}
GPU_SETTINGS = {
    "sasrec": [("bf16 autocast (default: precision=auto)", {}), ("fp32", {"precision": "32"}),
               ("batch ×4", {"batch_size": "x4"})],
    "tiger": [("cpu preset, bf16 autocast (default)", {}), ("cpu preset, fp32", {"precision": "32"}),
              ("cpu preset, batch ×4", {"batch_size": "x4"}), ("paper preset, bf16 autocast", {"preset": "paper"}),
              ("paper preset, fp32", {"preset": "paper", "precision": "32"})],
    "sid-gru": [("fp32 (default)", {}), ("torch.compile", {"compile": True})],
}


def one(kind: str, run: str, steps: int, overrides: dict, name: str, ids: str, accelerator: str = "cpu") -> dict:
    import polars as pl

    from semid.models import registry
    from semid.models import stage as model_stage

    spec = registry.get(kind)
    extra = {"preset": "cpu", "ids": ids} if kind == "tiger" else {"ids": ids} if kind == "sid-gru" else {}
    extra |= {k: v for k, v in overrides.items() if k == "preset"}
    overrides = {k: v for k, v in overrides.items() if k != "preset"}
    default = spec.config(**extra)
    if str(overrides.get("batch_size", "")).startswith("x"):
        overrides = overrides | {"batch_size": int(overrides["batch_size"][1:]) * default.batch_size}
    base = {"threads": 1} if accelerator == "cpu" else {"accelerator": accelerator}
    cfg = spec.config(**extra, **(base | overrides), max_steps=steps, max_epochs=1000, name=name)
    folder = model_stage.train(kind, cfg, run, force=True)
    log = pl.read_csv(next((folder / "logs").rglob("metrics.csv"))).drop_nulls("train/examples_per_s")
    meta = json.loads((folder / "config.json").read_text())["training"]
    return {"examples_per_s": round(float(log["train/examples_per_s"][-1]), 1), "steady_per_s": steady(log),
            "steps": meta["steps"],
            "batch_size": cfg.batch_size, "train_wall_s": meta["train_wall_s"], "precision": meta["precision"],
            "device": meta["device"]}


def steady(log) -> float:
    """Targets per second between the logged step nearest the middle and the last one: each logged
    step's time since the first step is its cumulative targets over its cumulative rate."""
    rows = log.drop_nulls("train/targets")
    if rows.height < 2:
        raise SystemExit("the training log has fewer than two throughput rows: raise --steps")
    seen, rate = rows["train/targets"].to_numpy(), rows["train/examples_per_s"].to_numpy()
    t = seen / rate
    mid = int(abs(rows["step"].to_numpy() - rows["step"][-1] / 2).argmin())
    mid = min(mid, rows.height - 2)
    return round(float((seen[-1] - seen[mid]) / (t[-1] - t[mid])), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/beauty-ids")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--models", default="sasrec,tiger,sid-gru")
    ap.add_argument("--ids", default="rqvae-3x256", help="TIGER's Semantic IDs: a folder under RUN/ids")
    ap.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu", help="gpu: the GPU settings (train_gpu.json)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    settings = GPU_SETTINGS if a.accelerator == "gpu" else SETTINGS
    if a.steps < 50:
        ap.error("--steps must be at least 50: the training loop logs its throughput every 50 steps")
    if a.one:
        kind, name, overrides = json.loads(a.one)
        print(json.dumps(one(kind, a.run, a.steps, overrides, name, a.ids, a.accelerator)))
        return
    rows = []
    for kind in a.models.split(","):
        for i, (label, overrides) in enumerate(settings[kind]):
            name = f"bench-{kind}-{i}"
            load = round(os.getloadavg()[0], 2)
            out = subprocess.run([sys.executable, __file__, "--run", a.run, "--steps", str(a.steps), "--ids", a.ids,
                                  "--accelerator", a.accelerator, "--one", json.dumps([kind, name, overrides])], capture_output=True, text=True,
                                 env=os.environ | {"SEMID_PROGRESS": "0"})
            shutil.rmtree(Path(a.run) / "models" / name, ignore_errors=True)
            if out.returncode:
                raise SystemExit(f"{kind} / {label} failed:\n{out.stderr[-2000:]}")
            row = {"model": kind, "setting": label, "overrides": overrides, "loadavg_1min_start": load}
            rows.append(row | json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"])
        r["ratio_to_default"] = round(r["steady_per_s"] / base["steady_per_s"], 2)
    gpu = gpu_name() if a.accelerator == "gpu" else None
    record.write(
        "train_gpu" if gpu else "train", f"Training throughput on {a.run}'s training sequences, {a.steps} steps a setting, next-item "
        f"targets per second from the training loop's log (TIGER: {'presets as named' if gpu else 'cpu preset'} on {a.ids} IDs; "
        f"SASRec: full-softmax CE; SID-GRU on the same IDs){f', on one {gpu}' if gpu else ''}",
        rows, ["model", "setting", "batch", "targets/s (all steps)", "steady targets/s (2nd half)", "ratio to default (steady)",
               "load at start"],
        [[r["model"], r["setting"], r["batch_size"], r["examples_per_s"], r["steady_per_s"], f"{r['ratio_to_default']}×",
          r["loadavg_1min_start"]] for r in rows], note=f", {gpu}" if gpu else "", **({"gpu": gpu} if gpu else {}))


def gpu_name() -> str:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: torch sees no GPU")
    return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"


if __name__ == "__main__":
    main()
