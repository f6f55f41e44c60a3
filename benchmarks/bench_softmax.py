"""Full against sampled softmax for the item-ID baselines: where the full softmax stops fitting.

One SASRec training step (forward, loss, backward, AdamW over every parameter) on a synthetic batch
of ``--batch`` rows × ``--length`` positions (every position a target), at catalogue sizes
``--items``, with the full softmax (``negatives=0``, the ``[targets × items]`` logits) and with a
sampled softmax of ``--negatives`` shared negatives (popularity sampler, logQ-corrected). Each
setting runs in a fresh subprocess: seconds per step (median of ``--steps`` after one warm-up step),
its ratio to the sampled softmax at the same size (measured in the same run), and the process's
peak resident memory. A full softmax whose logits alone would pass ``--memory-gib`` is not run:
its row says so, with the bytes it would need.

Usage: ``python benchmarks/bench_softmax.py [--items 10000,100000,300000,1000000,3000000]``.
Figures go to ``benchmarks/results/softmax.json`` and ``softmax.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import record

LOGIT_COPIES = 3  # logits, their log-softmax and its gradient are alive at once in the backward pass


def one(n_items: int, negatives: int, batch: int, length: int, steps: int, threads: int) -> dict:
    import numpy as np
    import torch

    from semid.models.seqrec.losses import ItemSampler, sequence_loss
    from semid.models.seqrec.model import ModelArgs, SASRec

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SASRec(ModelArgs(n_items=n_items, d_model=64, layers=2, heads=1, dropout=0.2, max_len=length))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    counts = np.random.default_rng(0).zipf(1.5, n_items) if negatives else None
    sampler = ItemSampler(n_items, negatives, counts) if negatives else None
    x = torch.randint(1, n_items + 1, (batch, length))
    y = torch.randint(0, n_items, (batch, length))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = sequence_loss(model, x, y, "ce", sampler)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"s_per_step": round(statistics.median(times[1:]), 4), "loss": round(float(loss), 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="10000,100000,300000,1000000,3000000")
    ap.add_argument("--negatives", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-gib", type=float, default=16.0, help="run a full softmax only if its logits fit in this")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        n, neg = (int(v) for v in a.one.split(","))
        print(json.dumps(one(n, neg, a.batch, a.length, a.steps, a.threads)))
        return
    targets = a.batch * a.length
    rows = []
    for n in (int(v) for v in a.items.split(",")):
        for neg in (a.negatives, 0):
            row = {"items": n, "softmax": f"sampled ({neg})" if neg else "full", "targets": targets,
                   "logits_gib": round(LOGIT_COPIES * targets * (neg + 1 if neg else n) * 4 / 2**30, 3)}
            if row["logits_gib"] > a.memory_gib:
                row["skipped"] = f"its logits need {row['logits_gib']} GiB > --memory-gib {a.memory_gib}"
            else:
                out = subprocess.run([sys.executable, __file__, "--one", f"{n},{neg}", "--batch", str(a.batch),
                                      "--length", str(a.length), "--steps", str(a.steps), "--threads", str(a.threads)],
                                     capture_output=True, text=True)
                if out.returncode:
                    row["skipped"] = f"failed: {out.stderr.strip().splitlines()[-1][:160]}"
                else:
                    row |= json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(row, flush=True)
    for r in rows:
        base = next(b for b in rows if b["items"] == r["items"] and b["softmax"] != "full")
        if "s_per_step" in r and "s_per_step" in base:
            r["ratio_to_sampled"] = round(r["s_per_step"] / base["s_per_step"], 2)
    record.write(
        "softmax", f"SASRec training step, full vs sampled softmax ({a.negatives} popularity negatives, logQ), "
        f"batch {a.batch} × {a.length} positions = {targets:,} targets, d 64, 2 blocks, AdamW, {a.threads} thread(s)", rows,
        ["items", "softmax", "s / step", "ratio to sampled", "peak RSS MiB", f"logits ({LOGIT_COPIES} copies) GiB", "note"],
        [[f"{r['items']:,}", r["softmax"], r.get("s_per_step", "–"), f"{r['ratio_to_sampled']}×" if "ratio_to_sampled" in r else "–",
          r.get("peak_rss_mib", "–"), r["logits_gib"], r.get("skipped", "")] for r in rows], threads=a.threads)


if __name__ == "__main__":
    main()
