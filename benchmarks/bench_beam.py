"""Trie-constrained beam search on a trained TIGER: the batched search against the reference.

Both decode the same users with the same model (beam 20, top 10, full-catalogue trie), in one
process, one after the other:

* ``batched``: :func:`semid.generative.beam.beam_search`: all users of a batch and all beams in one
  model call per ID position, trie lookups and top-k as tensor operations;
* ``reference``: :func:`semid.generative.beam_reference.reference_beam_search`: one user, one beam,
  one model call at a time, a dict-of-dicts trie, candidates sorted in Python.

and, for TIGER's decoder, the batched search with incremental decoding (each layer's keys and
values kept, one new token per step: what the rankers use) against the same search recomputing
the whole decoder at every step (the step wrapped in a function, so that no cache is kept).

It checks that the top-10 items agree and reports users/s for each. Usage:

    python benchmarks/bench_beam.py --run runs/beauty [--model tiger] [--users 200] [--threads 2]

Figures go to ``benchmarks/results/beam.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from semid.core import artifacts
from semid.generative.beam import beam_search
from semid.generative.beam_reference import build_dict_trie, model_step_one, reference_beam_search
from semid.generative.tokens import history_tokens
from semid.generative.trie import PrefixTrie
from semid.models.tiger.ranker import load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "beam.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/beauty"))
    ap.add_argument("--model", default="tiger")
    ap.add_argument("--users", type=int, default=200, help="test users decoded by both searches")
    ap.add_argument("--beam", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--batch-users", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    model, tok, meta = load(a.run / "models" / a.model)
    test = pl.read_parquet(a.run / "data" / "test.parquet")
    pick = np.sort(np.random.default_rng(0).choice(test.height, min(a.users, test.height), replace=False))
    max_items = meta["args"]["max_items"]
    hist_all = [np.asarray(h[-max_items:], dtype=np.int64) for h in test["history"].to_list()]
    hist = [hist_all[i] for i in pick]
    item_tokens = tok.item_tokens.numpy()

    t0 = time.perf_counter()
    trie = PrefixTrie(tok)
    trie_s = time.perf_counter() - t0

    def batched(histories: list[np.ndarray], cached: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
        order = np.argsort([len(h) for h in histories], kind="stable")
        items = np.full((len(histories), a.top_k), -1)
        scores = np.full((len(histories), a.top_k), -np.inf)
        t = time.perf_counter()
        with torch.no_grad():
            for s in range(0, len(order), a.batch_users):
                idx = order[s:s + a.batch_users]
                x = history_tokens([histories[i] for i in idx], item_tokens)
                state = model.start(x)
                step = state if cached else (lambda prefix, state=state: state(prefix))  # no follow: no cache
                res = beam_search(step, len(idx), tok, trie=trie, beam_size=a.beam, top_k=a.top_k)
                items[idx], scores[idx] = res.items.numpy(), res.scores.numpy()
        return items, scores, time.perf_counter() - t

    batched(hist[:8])  # warm-up
    fast_items, fast_scores, fast_s = batched(hist)
    all_items, all_scores, all_s = batched(hist_all)
    full_items, full_scores, full_s = batched(hist_all, cached=False)
    both = np.isfinite(full_scores)

    t0 = time.perf_counter()
    dict_trie = build_dict_trie(tok)
    dict_trie_s = time.perf_counter() - t0
    step_one = model_step_one(model, [history_tokens([h], item_tokens)[0] for h in hist])
    t0 = time.perf_counter()
    ref = [reference_beam_search(step_one, u, tok, dict_trie, beam_size=a.beam, top_k=a.top_k) for u in range(len(hist))]
    ref_s = time.perf_counter() - t0
    ref_items = np.array([[i for i, _ in r] + [-1] * (a.top_k - len(r)) for r in ref])
    ref_scores = np.array([[s for _, s in r] + [-np.inf] * (a.top_k - len(r)) for r in ref])

    same_lists = (ref_items == fast_items).all(1)
    same_sets = np.array([set(x) == set(y) for x, y in zip(ref_items, fast_items)])
    finite = np.isfinite(ref_scores) & np.isfinite(fast_scores)
    out = {
        "what": f"constrained beam search, beam {a.beam}, top {a.top_k}, full-catalogue trie",
        "model": str(a.run / "models" / a.model), "items": tok.num_items, "id_length": tok.id_length,
        "users_compared": len(hist),
        "batched": {"users_per_s": round(len(hist) / fast_s, 1), "wall_s": round(fast_s, 3),
                    "batch_users": a.batch_users},
        "batched_all_test_users": {"users": len(hist_all), "users_per_s": round(len(hist_all) / all_s, 1),
                                   "wall_s": round(all_s, 2)},
        "batched_all_test_users_recomputing_the_decoder": {"users_per_s": round(len(hist_all) / full_s, 1), "wall_s": round(full_s, 2)},
        "incremental_decoding_speedup": round(full_s / all_s, 2),
        "incremental_vs_recompute": {"identical_top_k_lists": int((full_items == all_items).all(1).sum()), "users": len(hist_all),
                                     "max_abs_score_diff": float(np.abs(full_scores[both] - all_scores[both]).max()) if both.any() else 0.0},
        "reference": {"users_per_s": round(len(hist) / ref_s, 2), "wall_s": round(ref_s, 2)},
        "speedup": round(ref_s / fast_s, 1),
        "identical_top_k_lists": int(same_lists.sum()), "identical_top_k_sets": int(same_sets.sum()),
        "max_abs_score_diff": float(np.abs(ref_scores[finite] - fast_scores[finite]).max()) if finite.any() else 0.0,
        "trie_build_s": {"array_trie": round(trie_s, 3), "dict_trie": round(dict_trie_s, 3)},
        "threads": torch.get_num_threads(), "hardware": artifacts.hardware(), "python": platform.python_version(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(a.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
