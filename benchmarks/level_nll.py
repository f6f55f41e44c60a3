"""Where does a Semantic-ID decoder lose probability? Per-level NLL of the true next item.

For each model folder (TIGER, SID-GRU, SID-BERT4Rec: anything that decodes Semantic IDs), the
negative log-likelihood of every ID token of the validation target, teacher-forced on the true
prefix, averaged over a fixed random sample of validation users. A model whose level-0 NLL
matches another's but whose later levels are worse has learned *which region* the user wants
as well, but not which codes exist under a prefix nor which of them the user wants.

    python benchmarks/level_nll.py --run runs/beauty-cpu --models tiger sid-gru [--users 3000]

Figures go to ``benchmarks/results/level_nll.json`` (one row per model, with the command).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import torch

from semid.core import artifacts
from semid.models import registry
from semid.models.sidrec.ranker import load as load_sid
from semid.models.tiger.data import collate_windows
from semid.models.tiger.ranker import load as load_tiger
from semid.sequences import eval_histories


def level_nll(folder: Path, df: pl.DataFrame, batch: int = 500) -> np.ndarray:
    spec = registry.get(json.loads((folder / "config.json").read_text())["kind"])
    kind = spec.kind
    model, tok, _ = load_tiger(folder) if kind == "tiger" else load_sid(folder, spec.config)
    item_tokens = tok.item_tokens.numpy()
    hist, targets, _ = eval_histories(df, 20)
    total = np.zeros(tok.id_length)
    with torch.no_grad():
        for a in range(0, len(hist), batch):
            # one teacher-forced window per user: history → (BOS + target ID, target ID)
            h = hist[a:a + batch]
            b = collate_windows(h, targets[a:a + batch], np.zeros(len(h), dtype=np.int64), item_tokens)
            t = b.labels[:, 0]
            if kind == "tiger":
                logp = torch.log_softmax(model(b.enc, b.dec_in, b.limit)[:, 0].float(), -1)
                total += -logp.gather(-1, t[..., None])[..., 0].sum(0).numpy()
            else:
                _, per_level = model.heads.nll(model.user(b.enc.view(len(t), -1, tok.id_length)), t)
                total += np.array([float(x) for x in per_level]) * len(t)
    return total / len(hist)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder with data/val.parquet and models/")
    ap.add_argument("--models", nargs="+", required=True, help="model folder names under RUN/models")
    ap.add_argument("--users", type=int, default=3000, help="validation users (a fixed random sample)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "level_nll.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    df = pl.read_parquet(args.run / "data" / "val.parquet")
    pick = np.random.default_rng(0).choice(len(df), min(args.users, len(df)), replace=False)
    df = df[np.sort(pick)]
    rows = []
    for name in args.models:
        nll = level_nll(args.run / "models" / name, df)
        rows.append({"model": name, "nll_per_level": [round(float(x), 4) for x in nll], "sum": round(float(nll.sum()), 4)})
        print(f"{name:>16}  " + "  ".join(f"L{i} {x:.3f}" for i, x in enumerate(nll)) + f"  sum {nll.sum():.3f}")
    out = {"run": str(args.run), "split": "val", "users": len(df), "command": "python " + " ".join(sys.argv),
           "hardware": artifacts.hardware(), "rows": rows}
    artifacts.write_json(args.out, out)
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
