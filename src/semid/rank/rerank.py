"""``semid rank rerank``: a two-stage recommender, TIGER retrieval then SID ranking.

TIGER's constrained beam search returns its top ``top_k`` items per test user; the trained
ranker scores each (history, item) pair and re-orders them. Full-catalogue Recall/NDCG (the
held-out target among all items, :mod:`semid.evaluate.metrics`) of TIGER alone and of the
two-stage pipeline on the same users, with bootstrap CIs, go to
``RUN/models/<ranker>/rerank-<tiger>.json``. Re-ranking cannot add items, so TIGER's
``recall@top_k`` bounds the pipeline's recall.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from semid.core import artifacts
from semid.core.log import log
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.evaluate import metrics as M
from semid.evaluate.stage import score
from semid.models import stage as model_stage
from semid.models.common import RankOptions
from semid.rank import data as D
from semid.rank import stage
from semid.rank.config import RerankConfig
from semid.rank.model import Ranker

KS = (5, 10, 20)


@torch.no_grad()
def rerank(model: Ranker, history: np.ndarray, items: np.ndarray, batch: int = 512) -> np.ndarray:
    """``items`` [U, k] (-1 = empty slot) re-ordered by the ranker's score, empty slots last."""
    model.eval()
    pad = model.pad
    out = np.empty_like(items)
    for a in range(0, len(items), batch):
        cand = items[a:a + batch]
        safe = np.where(cand < 0, pad, cand)
        s = model(torch.from_numpy(history[a:a + batch]), torch.from_numpy(safe)).numpy()
        s = np.where(cand < 0, -np.inf, s)
        order = np.argsort(-s, axis=1, kind="stable")
        out[a:a + batch] = np.take_along_axis(cand, order, 1)
    return out


def run(cfg: RerankConfig, run_dir: Path, *, results_root: Path | None = None, command: str | None = None) -> Path:
    run = RunFolder(run_dir)
    rank_dir, tiger_dir = run.model_dir(cfg.ranker), run.model_dir(cfg.tiger)
    tiger, _ = model_stage.trained_folder(run, cfg.tiger)
    t0 = time.perf_counter()
    with threads(cfg.threads):
        model, rcfg, _ = stage.load(rank_dir, run_dir)
        test = run.table("test")
        if cfg.max_users is not None and test.height > cfg.max_users:
            rows = np.sort(np.random.default_rng(cfg.seed).choice(test.height, cfg.max_users, replace=False))
            test = test[rows]
        hists = [np.asarray(h, dtype=np.int64) for h in test["history"].to_list()]
        users = test["user_id"].to_numpy().astype(np.int64)
        targets = test["target"].to_numpy().astype(np.int64)
        rank_fn, info = tiger.ranker(tiger_dir, tiger.config, RankOptions(top_k=cfg.top_k, beam_size=cfg.beam_size))
        log.info("rerank: TIGER top %d for %d users (beam %d)", cfg.top_k, len(users), cfg.beam_size)
        t1 = time.perf_counter()
        retrieved, _ = rank_fn(hists, users)
        tiger_s = time.perf_counter() - t1
        n_items = model.pad
        history = D.right_aligned(hists, rcfg.max_items, n_items)
        t2 = time.perf_counter()
        reranked = rerank(model, history, retrieved)
        rank_s = time.perf_counter() - t2
    ks = tuple(k for k in KS if k <= cfg.top_k)
    alone = score(retrieved, targets, n_items, ks, None, cfg.bootstrap, cfg.seed)
    both = score(reranked, targets, n_items, ks, None, cfg.bootstrap, cfg.seed)
    r = M.ranks(retrieved, targets)
    doc = {"split": "test", "users": int(len(users)), "tiger": alone, "tiger+ranker": both,
           "tiger_recall@top_k": M.recall_at(r, cfg.top_k),
           "ranker": {"folder": str(rank_dir), "representation": rcfg.representation, "table_size": rcfg.table_size,
                      "history": rcfg.history, "rows": model.rows, "params": model.num_params},
           "config": cfg.model_dump(mode="json"),
           "tiger_info": {"beam_size": cfg.beam_size, "preset": info.get("preset")},
           "timing_s": {"tiger": round(tiger_s, 2), "rerank": round(rank_s, 3),
                        "total": round(time.perf_counter() - t0, 2)}, "hardware": artifacts.hardware()}
    doc["command"] = command
    out = rank_dir / f"rerank-{cfg.tiger}.json"
    artifacts.write_json(out, doc)
    if results_root is not None:  # its own record beside the study's (never a read-modify-write of it)
        dest = Path(results_root) / run.dataset() / "rerank.json"
        artifacts.write_json(dest, {k: v for k, v in doc.items() if k != "config"} | {"run_dir": str(run)})
    a, b = alone["metrics"], both["metrics"]
    log.info("rerank: Recall@10 %.4f → %.4f, NDCG@10 %.4f → %.4f (TIGER recall@%d %.4f bounds it) → %s",
             a["recall@10"], b["recall@10"], a["ndcg@10"], b["ndcg@10"], cfg.top_k, doc["tiger_recall@top_k"], out)
    return out
