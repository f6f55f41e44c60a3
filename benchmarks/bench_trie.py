"""The Semantic-ID trie at catalogue scale: build time and memory, and constrained beam search
against the brute-force prefix check, at 10k, 100k, 1M and 10M synthetic IDs.

IDs are 3 levels × 256 codes plus the collision code (TIGER's layout): the first two levels drawn
from a skewed distribution (as trained codebooks are: a few codes hold many items), the third
uniform, then :func:`semid.ids.dedup.dedup_codes`. For each size, in a fresh subprocess (so that
its peak RSS is its own):

* **build**: :class:`semid.generative.trie.PrefixTrie` over every ID: seconds, the trie's own
  arrays in bytes, and the process's peak RSS (which also holds the IDs and the tokenizer);
* **trie search**: :func:`semid.generative.beam.beam_search` (beam 20, top 10) for a batch of users
  whose model is a fixed random table of log-probabilities, so the time is the search's own
  (trie lookups, masking, top-k), not a network's;
* **brute force**: the same search, but each step finds the codes that may follow each beam by
  comparing the beam's prefix with every item's ID (what GRID's implementation does), on fewer
  users, and skipped where one batch would take more than ``--brute-limit`` seconds (estimated
  from the smaller sizes).

Both searches are checked to return the same items. Usage:

    python benchmarks/bench_trie.py [--sizes 10000,100000,1000000,10000000] [--users 256]

Figures go to ``benchmarks/results/trie.json`` and ``trie.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

import record

LEVELS, K, BEAM, TOP = 3, 256, 20, 10


def synthetic_ids(n: int, seed: int = 0) -> np.ndarray:
    """[n, 4]: three codes (two skewed levels, one uniform) and the collision code."""
    from semid.ids.dedup import dedup_codes

    rng = np.random.default_rng(seed)
    skew = rng.dirichlet(np.full(K, 0.3))  # a few popular codes, as in trained codebooks
    codes = np.stack([rng.choice(K, n, p=skew), rng.choice(K, n, p=rng.permutation(skew)), rng.integers(0, K, n)], 1)
    return np.concatenate([codes, dedup_codes(codes)[:, None]], 1).astype(np.int64)


class TableModel:
    """A 'model' whose next-token log-probs are a fixed random table per (user, depth): the search's
    cost without a network's."""

    def __init__(self, tok, users: int, seed: int = 1):
        g = torch.Generator().manual_seed(seed)
        self.tables = [torch.log_softmax(torch.randn(users, tok.vocab_size, generator=g), -1) for _ in range(tok.id_length)]

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        b, nb, t = prefix.shape
        return self.tables[t][:, None, :].expand(b, nb, -1)


class BruteForce(TableModel):
    """The same log-probs, with every beam's allowed next codes found by comparing its prefix with
    every item's ID (no trie): invalid codes are masked here, and the search runs unconstrained."""

    def __init__(self, tok, table: TableModel, users: int):
        self.tables = [t[:users] for t in table.tables]  # the first users' log-probs, as the trie search saw them
        self.tok, self.codes = tok, torch.from_numpy(tok.codes)

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        logp = super().__call__(prefix).clone()
        b, nb, t = prefix.shape
        lo, hi = self.tok.level_range(t)
        codes = prefix - torch.from_numpy(self.tok.offsets[:t])  # tokens → codes of the first t levels
        for u in range(b):
            for j in range(nb):
                match = (self.codes[:, :t] == codes[u, j]).all(1) if t else torch.ones(len(self.codes), dtype=torch.bool)
                allowed = torch.zeros(hi - lo, dtype=torch.bool)
                allowed[self.codes[match, t]] = True
                logp[u, j, lo:hi] = logp[u, j, lo:hi].masked_fill(~allowed, float("-inf"))
        return logp


def one(n: int, users: int, brute_users: int, brute_limit: float, per_item_s: float | None) -> dict:
    """Every measurement for one size (run in its own process)."""
    from semid.generative.beam import beam_search
    from semid.generative.tokens import SIDTokenizer
    from semid.generative.trie import PrefixTrie

    torch.set_num_threads(1)
    ids = synthetic_ids(n)
    tok = SIDTokenizer(ids, codebook_size=K)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    trie = PrefixTrie(tok)
    build_s = time.perf_counter() - t0
    trie_bytes = sum(k.numel() * k.element_size() for k in trie.keys) + trie.leaf_item.numel() * 8 + sum(
        d.numel() * d.element_size() for d in trie.dense if d is not None)
    out = {"items": n, "max_collision_code": int(ids[:, -1].max()), "build_s": round(build_s, 3),
           "trie_mib": round(trie_bytes / 2**20, 1), "peak_rss_before_build_mib": round(rss_before, 1)}
    model = TableModel(tok, users)
    beam_search(model, users, tok, trie=trie, beam_size=BEAM, top_k=TOP)  # warm-up
    t0 = time.perf_counter()
    fast = beam_search(model, users, tok, trie=trie, beam_size=BEAM, top_k=TOP)
    out["trie_users_per_s"] = round(users / (time.perf_counter() - t0), 1)
    estimate = per_item_s * n * brute_users if per_item_s else 0.0
    if estimate > brute_limit:
        out["brute_force"] = f"skipped: one batch of {brute_users} users estimated at {estimate:.0f} s (> {brute_limit:g} s)"
    else:
        brute = BruteForce(tok, model, brute_users)
        t0 = time.perf_counter()
        slow = beam_search(brute, brute_users, tok, trie=None, beam_size=BEAM, top_k=TOP)
        took = time.perf_counter() - t0
        out["brute_users_per_s"] = round(brute_users / took, 3)
        out["brute_s_per_user_item"] = took / brute_users / n
        out["speedup"] = round(out["trie_users_per_s"] / out["brute_users_per_s"], 1)
        # the first users of both searches: the same items
        real = torch.isfinite(fast.scores[:brute_users])
        out["same_items"] = bool(torch.equal(fast.items[:brute_users][real], slow.items[real]))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000")
    ap.add_argument("--users", type=int, default=256, help="users of the trie search's batch")
    ap.add_argument("--brute-users", type=int, default=4, help="users of the brute-force search")
    ap.add_argument("--brute-limit", type=float, default=600.0, help="skip a brute-force batch estimated to take longer (s)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--per-item-s", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.users, a.brute_users, a.brute_limit, a.per_item_s)))
        return
    rows, per_item = [], None
    for n in (int(s) for s in a.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--users", str(a.users), "--brute-users", str(a.brute_users),
               "--brute-limit", str(a.brute_limit)] + (["--per-item-s", str(per_item)] if per_item else [])
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        per_item = row.get("brute_s_per_user_item", per_item)
        print(json.dumps(row), flush=True)
        rows.append(row)
    table = [[f"{r['items']:,}", r["build_s"], r["trie_mib"], f"{r['peak_rss_mib']:,}", f"{r['trie_users_per_s']:,}",
              r.get("brute_users_per_s", r.get("brute_force", "")), f"{r['speedup']}×" if "speedup" in r else "", r.get("same_items", "")]
             for r in rows]
    record.write("trie", f"PrefixTrie over synthetic IDs ({LEVELS} levels x {K} + collision code); beam {BEAM}, top {TOP}; "
                 "the model is a fixed table of log-probs, so times are the search's own", rows,
                 ["IDs", "build s", "trie MiB", "peak RSS MiB", "trie search users/s", "brute force users/s", "ratio", "same items"],
                 table, note=", 1 torch thread", torch=torch.__version__)


if __name__ == "__main__":
    main()
