"""``semid rank train``: one ranker on a run folder → ``RUN/models/<name>/``.

Folder: ``model.safetensors`` + ``config.json`` (rebuild with :func:`load`), ``spm.model``
(SPM representation), ``metrics.json`` (test AUC / NDCG@10 / Recall@10 on all, cold, tail;
validation curve; rows and parameters), ``manifest.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder, check_folder, reuse
from semid.core.threads import threads
from semid.rank import data as D
from semid.rank import metrics as RM
from semid.rank import represent, sids, spm
from semid.rank.config import RankConfig
from semid.rank.model import Ranker
from semid.rank.train import fit, score

WEIGHTS, CONFIG, SPM_FILE, METRICS = "model.safetensors", "config.json", "spm.model", "metrics.json"
SLICES = ("all", "cold", "tail")
SID_REPRESENTATIONS = ("unigram", "unigram_dedup", "bigram", "prefix", "spm")


def split_inputs(run_dir: Path) -> dict[str, str]:
    """Fingerprints of the run's train/val/test tables (a clear error when prepare has not run)."""
    run = RunFolder(run_dir)
    return run.inputs({s: run.need(run.table_path(s), "semid prepare") for s in ("train", "val", "test")})


def load_data(cfg: RankConfig, run_dir: Path, tail_share: float = 0.5) -> D.RankData:
    return D.load(run_dir, max_items=cfg.max_items, negatives=cfg.eval_negatives, sampling=cfg.eval_sampling,
                  alpha=cfg.neg_alpha,
                  seed=cfg.eval_seed, val_users=cfg.val_users, tail_share=tail_share)


def sid_codes(cfg: RankConfig, data: D.RankData, run_dir: Path) -> np.ndarray:
    """Codes [N, L] of every item (IDs fitted on the training items), cached in ``data``."""
    key = ("codes", cfg.ids.model_dump_json())
    if key not in data.cache:
        data.cache[key] = sids.fit(run_dir, cfg.ids, data.counts, threads=cfg.threads)
    return data.cache[key]


def item_module(cfg: RankConfig, data: D.RankData, run_dir: Path, pieces: spm.SidPieces | None = None):
    """The representation of ``cfg`` (IDs, embeddings and SPM vocabularies cached in ``data``)."""
    name, c = cfg.representation, data.cache
    kw: dict[str, Any] = {}
    if name in SID_REPRESENTATIONS:
        kw |= {"codes": sid_codes(cfg, data, run_dir), "codebook_size": cfg.ids.codebook_size}
    if name == "spm":
        key = ("spm", cfg.ids.model_dump_json(), cfg.table_size)
        if pieces is None and key not in c:
            c[key] = spm.train(kw["codes"], data.counts, cfg.ids.codebook_size, cfg.table_size)
        pieces = pieces or c[key]
        kw |= {"item_pieces": pieces.item_pieces(kw["codes"]), "vocab_size": pieces.vocab_size}
        c["last_spm"] = pieces
    if name == "dense":
        if "embeddings" not in c:
            c["embeddings"] = sids.embeddings(run_dir)
        kw["embeddings"] = c["embeddings"]
    return represent.build(name, n_items=data.n_items, dim=cfg.dim, table_size=cfg.table_size, seed=cfg.seed, **kw)


def build(cfg: RankConfig, data: D.RankData, run_dir: Path, pieces: spm.SidPieces | None = None) -> Ranker:
    torch.manual_seed(cfg.seed)
    return Ranker(item_module(cfg, data, run_dir, pieces), dim=cfg.dim, mlp=cfg.mlp, history=cfg.history)


def evaluate(scores: np.ndarray, lists: D.Lists) -> dict[str, dict[str, float]]:
    masks = {"all": None, "cold": lists.cold, "tail": lists.tail}
    return {name: RM.list_metrics(scores, mask) for name, mask in masks.items()}


def run(cfg: RankConfig, run_dir: Path, *, force: bool = False) -> Path:
    """Train, evaluate on test and save one ranker; reuse when config and data are unchanged."""
    out = RunFolder(run_dir).model_dir(cfg.folder_name())
    inputs = split_inputs(run_dir)
    config = cfg.model_dump(mode="json")
    if reuse("rank train", out, config, inputs, force=force):
        return out
    with threads(cfg.threads), artifacts.StageRun("rank", out, config, inputs, seed=cfg.seed) as stage:
        t0 = time.perf_counter()
        data = load_data(cfg, run_dir)
        model = build(cfg, data, run_dir)
        curve = fit(model, cfg, data)
        train_s = time.perf_counter() - t0
        result = evaluate(score(model, data.test), data.test)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
        outputs = [WEIGHTS, CONFIG, METRICS]
        if cfg.representation == "spm":
            data.cache["last_spm"].save(out / SPM_FILE)
            outputs.append(SPM_FILE)
        artifacts.write_json(out / CONFIG, {"rank": config, "n_items": data.n_items})
        metrics = {"split": "test", "slices": result, "representation": cfg.representation,
                   "table_size": cfg.table_size, "history": cfg.history, "rows": model.rows,
                   "params": model.num_params, "curve": curve, "train_s": round(train_s, 2),
                   "protocol": protocol(cfg), "hardware": artifacts.hardware()}
        artifacts.write_json(out / METRICS, metrics)
        stage.outputs = outputs
    a = result["all"]
    log.info("rank %s: test AUC %.4f (cold %.4f), NDCG@10 %.4f, Recall@10 %.4f; %d rows; %.1f s → %s",
             cfg.representation, a["auc"], result["cold"]["auc"], a["ndcg@10"], a["recall@10"], model.rows,
             train_s, out)
    return out


def protocol(cfg: RankConfig) -> dict[str, Any]:
    def how(sampling: str) -> str:
        return f"popularity (count^{cfg.neg_alpha})" if sampling == "popularity" else "uniform over the catalogue"

    return {"task": "next-item engagement (CTR proxy): observed next item vs sampled negatives",
            "train_negatives": f"{cfg.neg_ratio} per event, {how(cfg.neg_sampling)}, redrawn each epoch",
            "eval_lists": f"positive + {cfg.eval_negatives} negatives, {how(cfg.eval_sampling)} (seed {cfg.eval_seed})",
            "slices": {"cold": "positive never seen in training",
                       "tail": "warm positives among the least popular half of training items"},
            "ties": "rank counts ties against the positive; AUC counts them one half",
            "ids": cfg.ids.model_dump(mode="json") | {"fitted_on": "items seen in training only"}}


def load(folder: Path, run_dir: Path) -> tuple[Ranker, RankConfig, D.RankData]:
    """(model in eval mode, its config, the run's data) of a trained ranker folder."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file():
        raise DataError(f"{folder / WEIGHTS} not found: run `semid rank train` first")
    fix = f"retrain it with `semid rank train --out {run_dir} --force` and the settings in its config.json"
    manifest = check_folder("rank train", folder, fix)
    if manifest.get("inputs") != split_inputs(run_dir):
        raise DataError(f"{folder} was trained on other data (the run's train/val/test changed since): {fix}")
    meta = artifacts.read_json(folder / CONFIG)
    cfg = RankConfig.model_validate(meta["rank"])
    data = load_data(cfg, run_dir)
    if data.n_items != meta["n_items"]:
        raise DataError(f"ranker trained on {meta['n_items']} items, the run has {data.n_items}", path=folder)
    pieces = None
    if cfg.representation == "spm":
        pieces = spm.load(folder / SPM_FILE, cfg.ids.levels, cfg.ids.codebook_size)
    model = build(cfg, data, run_dir, pieces)
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval(), cfg, data
