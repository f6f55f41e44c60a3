"""The ``evaluate`` stage: rank the full catalogue for every user of a split and score it.

    semid evaluate --out runs/beauty                           # models/tiger on test, beam 20
    semid evaluate --out runs/beauty split=val beam_size=50
    semid evaluate --out runs/beauty constrained=false          # free beam search: invalid-ID rate
    semid evaluate --out runs/beauty cold_start_eps=0.1         # TIGER §4.4 cold-start mode (every model capped)

Every model folder names its kind in ``config.json``; the model registry
(:mod:`semid.models.registry`) loads it as a ranker ``rank(histories, users) -> (items [U, K],
invalid [U, K] | None)``, so one protocol serves every model. Writes ``<model folder>/metrics.json`` (other settings:
``metrics-<tag>.json``): the numbers, 95% bootstrap CIs over users, the protocol and the run's provenance; and
``ranks.parquet`` (``ranks-<tag>.parquet``): each user's target and its 1-based rank in the top K (null when absent),
which paired comparisons (:mod:`semid.evaluate.stats`) read.

Two protocols, both in every record: ``metrics`` ranks every item, the user's history included (TIGER's protocol);
``metrics_history_removed`` drops the user's history items from the list first (the full-sort protocol of the
SASRec / BERT4Rec / GRU4Rec papers). Score-based models rank K + (longest history) items so the second list is still
K long; a generative model's beam holds ``beam_size`` items, so its second list can be shorter.

Cold-start mode (``cold_start_eps``, TIGER §4.4) puts at most ``floor(eps·p)`` items unseen in training in
every top ``p`` of every model's list: a generative model adds the unseen items that share a generated ID's
prefix and caps them (:mod:`semid.generative.coldstart`); a model that scores every item has its list capped
here, so an uncapped KNN is ``cold_start_eps`` unset. The history-removed list is capped again after the
history items leave it. The record names the rule (``protocol.cold_start_rule``), and a file scored by
another rule is scored again. ``cold_start_codes=m`` (with ``cold_start_eps``) widens the generative
models' match from the full prefix of L codes to its first ``m``, deepest matches first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field, model_validator

from semid.core import artifacts, trainlog
from semid.core.config import StageConfig
from semid.core.log import log
from semid.core.run import RunFolder
from semid.core.threads import threads
from semid.evaluate import bootstrap
from semid.evaluate import metrics as M
from semid.generative import coldstart
from semid.models import stage as model_stage
from semid.models.common import RankOptions


class EvaluateConfig(StageConfig):
    model: str = Field("tiger", description="model folder under RUN/models")
    split: Literal["test", "val"] = Field("test", description="which split's targets to rank")
    beam_size: int = Field(20, ge=1, description="beam size (generative models)")
    top_k: int = Field(20, ge=1, description="list length scored (at least the largest K)")
    ks: list[int] = Field(default_factory=lambda: list(M.KS), description="cut-offs of recall/ndcg/coverage")
    constrained: bool = Field(True, description="generative models: constrain decoding to valid IDs (trie)")
    cold_start_eps: float | None = Field(None, ge=0, le=1, description="cold-start mode: max share of items unseen in training "
                                                                                  "in every top K of every model's list")
    cold_start_codes: int | None = Field(None, ge=1, description="cold-start mode, generative models: leading codes an unseen "
                                         "item must share with a generated ID to join the list (unset: all L, TIGER's rule)")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of users for 95% CIs (0 = none)")
    max_users: int | None = Field(None, ge=1, description="score a random sample of this many users (unset = all)")
    batch_users: int = Field(256, ge=1, description="users per decoding batch")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="where to run the model")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (unset = the model's training setting)")
    tag: str | None = Field(None, description="suffix of the metrics file (unset: derived from the settings)")
    seed: int = Field(0, description="seed of the user sample and the bootstrap")

    @model_validator(mode="after")
    def _codes_need_eps(self) -> EvaluateConfig:
        coldstart.check_codes(self.cold_start_eps, self.cold_start_codes)
        return self


def metrics_name(cfg: EvaluateConfig) -> str:
    parts = [] if cfg.split == "test" else [cfg.split]
    if cfg.beam_size != 20:
        parts.append(f"beam{cfg.beam_size}")
    if not cfg.constrained:
        parts.append("free")
    if cfg.cold_start_eps is not None:
        parts.append(f"cold{cfg.cold_start_eps:g}")
        if cfg.cold_start_codes is not None:
            parts.append(f"codes{cfg.cold_start_codes}")
    if cfg.max_users:
        parts.append(f"users{cfg.max_users}")
    tag = cfg.tag or "-".join(parts)
    return f"metrics-{tag}.json" if tag else "metrics.json"


def same_config(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether a metrics file's recorded config is ``new``; a key the file predates counts as its
    default, so a new option (at its default) does not make every finished file stale."""
    if old is None or set(old) - set(new):
        return False
    defaults = EvaluateConfig().model_dump(mode="json")
    return all(old.get(k, defaults.get(k)) == v for k, v in new.items())


def ranks_name(metrics_file: str | Path) -> str:
    """``metrics.json`` → ``ranks.parquet``, ``metrics-val.json`` → ``ranks-val.parquet``."""
    return Path(metrics_file).name.replace("metrics", "ranks", 1).removesuffix(".json") + ".parquet"


def remove_history(items: np.ndarray, histories: list, k: int) -> np.ndarray:
    """Each row's items minus that user's history items, first ``k`` kept (-1 pads a short list)."""
    out = np.full((len(items), k), -1, dtype=np.int64)
    for i, (row, hist) in enumerate(zip(items, histories)):
        keep = row[(row >= 0) & ~np.isin(row, np.asarray(hist, dtype=np.int64))][:k]
        out[i, :len(keep)] = keep
    return out


def _device(accelerator: str) -> str:
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator == "gpu" else "cpu"


def run(cfg: EvaluateConfig, run_dir: Path | RunFolder, *, force: bool = False) -> Path:
    """Score ``RUN/models/<model>`` on a split; returns the metrics file."""
    run = RunFolder(run_dir)
    folder = run.model_dir(cfg.model)
    meta_file = folder / "config.json"
    spec, meta = model_stage.trained_folder(run, cfg.model)
    if not spec.needs_ids and cfg.cold_start_codes is not None:  # it matches no codes: its list does not change
        cfg = cfg.model_copy(update={"cold_start_codes": None})
    out = folder / metrics_name(cfg)
    # the model's settings live in config.json and its weights in *.safetensors: either changing re-scores
    ranks_file = folder / ranks_name(out)
    inputs = run.inputs({"split": run.table_path(cfg.split), "config.json": meta_file,
                         **{f.name: f for f in sorted(folder.glob("*.safetensors"))}})
    config = cfg.model_dump(mode="json")
    if not force and out.is_file() and ranks_file.is_file():
        old = artifacts.read_json(out)
        rule = old.get("protocol", {}).get("cold_start_rule")
        if same_config(old.get("config"), config) and old.get("inputs") == inputs and "metrics_history_removed" in old \
                and rule == (coldstart.RULE if cfg.cold_start_eps is not None else None):
            log.info("evaluate: %s is up to date (reused; --force to redo)", out)
            return out

    df = run.table(cfg.split)
    train = run.table("train")
    n_items = run.table("items").height
    if cfg.max_users and cfg.max_users < df.height:
        df = df.sample(cfg.max_users, seed=cfg.seed).sort("user_id")
    seen = np.zeros(n_items, dtype=bool)
    seen[np.concatenate([train["target"].to_numpy(), train["history"].explode().drop_nulls().to_numpy()])] = True
    device = _device(cfg.accelerator)
    model_cfg = meta.get("config") or {}
    histories = df["history"].to_list()
    # room for the history items the second protocol removes (and, in cold-start mode, for the unseen
    # items the cap drops from a list that ranks every item)
    longest = max((len(h) for h in histories), default=0)
    cap = coldstart.ColdCap(~seen, cfg.cold_start_eps) if cfg.cold_start_eps is not None else None
    margin = cfg.top_k if cap is not None and not spec.needs_ids else 0
    with threads(cfg.threads or model_cfg.get("threads")):
        opts = RankOptions(top_k=cfg.top_k + longest + margin, beam_size=cfg.beam_size, constrained=cfg.constrained, cold_items=~seen,
                           cold_start_eps=cfg.cold_start_eps, cold_start_codes=cfg.cold_start_codes, batch_users=cfg.batch_users, device=device)
        rank, info = spec.ranker(folder, spec.config, opts)
        info = {"kind": spec.kind, "params": meta.get("params", 0), "seed": model_cfg.get("seed"),
                "preset": model_cfg.get("preset"), "training": meta.get("training"), **info}
        if spec.needs_ids:
            info |= {"beam_size": cfg.beam_size, "constrained": cfg.constrained, "cold_start_eps": cfg.cold_start_eps,
                     "cold_start_codes": cfg.cold_start_codes}
        log.info("evaluate: %s on %d %s users (beam %d, %s)", cfg.model, df.height, cfg.split, cfg.beam_size,
                 "constrained" if cfg.constrained else "free")
        t0 = time.perf_counter()
        ranked, invalid = rank(histories, df["user_id"].to_numpy().astype(np.int64))
        rank_s = time.perf_counter() - t0
    # cold-start mode: a generative ranker caps its own candidates; a list of every item is capped here.
    # The history-removed list is the list minus the history, capped again, so the cap holds in it too
    capped = ranked if cap is None or spec.needs_ids else cap.cap(ranked, None, ranked.shape[1])[0]
    items = _width(capped[:, :cfg.top_k], cfg.top_k)
    invalid = None if invalid is None else _width(invalid[:, :cfg.top_k], cfg.top_k, False)
    removed = remove_history(ranked, histories, ranked.shape[1])
    if cap is not None:
        removed = cap.cap(removed, None, cfg.top_k)[0]
    removed = _width(removed[:, :cfg.top_k], cfg.top_k)
    targets = df["target"].to_numpy()
    result = score(items, targets, n_items, cfg.ks, invalid, cfg.bootstrap, cfg.seed)
    result_removed = score(removed, targets, n_items, cfg.ks, None, cfg.bootstrap, cfg.seed)
    cold = df["cold"].to_numpy() if "cold" in df.columns else np.zeros(df.height, dtype=bool)
    groups = {}
    if cold.any():
        groups["cold_targets"] = {"users": int(cold.sum()),
                                  **score(items[cold], targets[cold], n_items, cfg.ks, None, 0, cfg.seed)["metrics"]}
    record = {
        "model": cfg.model, "kind": spec.kind, "dataset": run.dataset(), "split": cfg.split, "users": int(df.height),
        **result, "metrics_history_removed": result_removed["metrics"], "ci95_history_removed": result_removed["ci95"],
        "groups": groups,
        "protocol": {"ranking": "full catalogue", "targets_per_user": 1, "history_items": info.get("max_items") or "model's",
                     "metrics": "history items left in the ranked list (TIGER's protocol)",
                     "metrics_history_removed": "the user's history items removed from the ranked list (the baselines' "
                                                "papers' full-sort protocol)" + ("; from the beam's list of beam_size items"
                                                                                 if spec.needs_ids else ""),
                     "beam_size": cfg.beam_size, "top_k": cfg.top_k, "constrained": cfg.constrained,
                     "cold_start_eps": cfg.cold_start_eps,
                     "cold_start_rule": coldstart.RULE if cfg.cold_start_eps is not None else None,
                     "cold_start_codes": cfg.cold_start_codes,
                     "mrr": f"MRR@{cfg.top_k} (0 when the target is not in the list)",
                     "bootstrap": f"{cfg.bootstrap} resamples of users, percentile 95% CI",
                     "split": run.split_protocol()},
        "model_info": info, "seeds": {"evaluate": cfg.seed, "model": info.get("seed")},
        "rank_wall_s": round(rank_s, 2), "users_per_s": round(df.height / max(rank_s, 1e-9), 1),
        "train_wall_s": trainlog.train_seconds(folder, meta.get("training") or {})[0],
        "trained": (meta.get("training") or {}).get("started"),
        "training_provenance": meta.get("provenance"), "ranks_file": ranks_file.name,
        "config": config, "inputs": inputs, **artifacts.provenance(config),
    }
    record["hardware"] |= {"device": device}
    with artifacts.atomic_path(ranks_file) as tmp:
        pl.DataFrame({"user_id": df["user_id"], "target": targets,
                      "rank": _one_based(M.ranks(items, targets)), "rank_history_removed": _one_based(M.ranks(removed, targets))},
                     schema_overrides={"rank": pl.Int32, "rank_history_removed": pl.Int32}).write_parquet(tmp)
    artifacts.write_json(out, record)
    m, mr = result["metrics"], result_removed["metrics"]
    log.info("evaluate: recall@10 %.4f, ndcg@10 %.4f, mrr %.4f, coverage@10 %.3f; history removed: recall@10 %.4f, "
             "ndcg@10 %.4f (%.1f users/s) → %s", m.get("recall@10", 0), m.get("ndcg@10", 0), m["mrr"], m.get("coverage@10", 0),
             mr.get("recall@10", 0), mr.get("ndcg@10", 0), record["users_per_s"], out)
    return out


def _width(a: np.ndarray, k: int, fill=-1) -> np.ndarray:
    """``a`` padded on the right to ``k`` columns (a model may return fewer items than asked)."""
    if a.shape[1] >= k:
        return a
    return np.concatenate([a, np.full((len(a), k - a.shape[1]), fill, dtype=a.dtype)], axis=1)


def _one_based(r: np.ndarray) -> list[int | None]:
    return [int(x) + 1 if x >= 0 else None for x in r]


def read_ranks(path: Path) -> pl.DataFrame:
    """A ``ranks.parquet`` (user_id, target, rank, rank_history_removed; ranks 1-based, null = not in the list)."""
    return artifacts.read_with(path, pl.read_parquet)


def per_user_metric(ranks: pl.Series, metric: str) -> np.ndarray:
    """Per-user values of ``recall@k`` / ``ndcg@k`` / ``mrr`` from 1-based ranks (null = miss)."""
    r = ranks.fill_null(0).to_numpy().astype(np.int64) - 1  # 0-based, -1 = absent
    if metric == "mrr":
        return M.rr_per_user(r)
    base, _, k = metric.partition("@")
    fn = {"recall": M.recall_per_user, "ndcg": M.ndcg_per_user}.get(base)
    if fn is None or not k.isdigit():
        raise ValueError(f"unknown per-user metric {metric!r}: use recall@K, ndcg@K or mrr")
    return fn(r, int(k))


def score(items: np.ndarray, targets: np.ndarray, n_items: int, ks, invalid, n_boot: int, seed: int) -> dict[str, Any]:
    metrics = M.compute(items, targets, n_items, ks, invalid)
    ci = bootstrap.confidence_intervals(M.per_user(items, targets, ks), n_boot=n_boot, seed=seed)
    return {"metrics": metrics, "ci95": ci}


__all__ = ["EvaluateConfig", "run", "score", "metrics_name", "ranks_name", "remove_history", "read_ranks", "per_user_metric"]
