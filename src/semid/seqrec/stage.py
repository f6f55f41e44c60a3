"""Item-ID baselines as stages: ``semid train sasrec|gru4rec|bert4rec|pop|knn`` → ``RUN/models/<name>/``.

    semid train sasrec --out runs/beauty                 # SASRec, full-softmax CE (folder sasrec-ce)
    semid train sasrec --out runs/beauty loss=bce        # SASRec's paper loss (folder sasrec-bce)
    semid train gru4rec --out runs/beauty threads=1
    semid evaluate --out runs/beauty model=sasrec-ce

Outputs: ``model.safetensors`` (weights; item counts for pop; normalised text embeddings and
query weights for knn), ``config.json`` (kind, model arguments, resolved config, parameters, training summary),
``manifest.json``, and for the neural models ``checkpoints/{last,best}.ckpt`` and
``logs/metrics.csv``. :func:`ranker` scores the full catalogue for :mod:`semid.evaluate.stage`;
history items are not removed from the lists (as for TIGER).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid import artifacts
from semid.config import StageConfig
from semid.data.prepare import load_table
from semid.data.prepare import stage_dir as data_dir
from semid.errors import DataError
from semid.log import log
from semid.seqrec import config as C
from semid.seqrec import data, knn, pop

WEIGHTS, CONFIG = "model.safetensors", "config.json"
MODELS: dict[str, type[StageConfig]] = {"sasrec": C.SASRecConfig, "gru4rec": C.GRU4RecConfig,
                                        "bert4rec": C.BERT4RecConfig, "pop": C.PopConfig, "knn": C.KNNConfig}


def kind_of(cfg: StageConfig) -> str:
    for kind, cls in MODELS.items():
        if type(cfg) is cls:
            return kind
    raise TypeError(f"not a baseline config: {type(cfg).__name__}")


def run(cfg: StageConfig, run_dir: Path, *, force: bool = False, resume: bool = False) -> Path:
    """Train (or count, or index) one baseline into ``RUN/models/<cfg.name>``; returns the folder."""
    kind = kind_of(cfg)
    run_dir = Path(run_dir)
    out = run_dir / "models" / cfg.name
    files = {"train": data_dir(run_dir) / "train.parquet"}
    if kind in ("sasrec", "gru4rec", "bert4rec"):
        files["val"] = data_dir(run_dir) / "val.parquet"
    if kind == "knn":
        files["embeddings"] = run_dir / cfg.embeddings
        if not files["embeddings"].is_file():
            raise DataError(f"{files['embeddings']} not found: run `semid embed --out {run_dir}` first")
    for name, path in files.items():
        if not path.is_file():
            raise DataError(f"{path} not found: run `semid prepare --out {run_dir}` first")
    inputs = artifacts.fingerprint_inputs(files)
    config = cfg.model_dump(mode="json")
    if not force and not resume and artifacts.is_fresh(out, config, inputs):
        log.info("%s: %s is up to date (reused; --force to retrain)", kind, out)
        return out
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n_items = load_table(run_dir, "items").height
    seqs = data.sequences(load_table(run_dir, "train"))
    with artifacts.StageRun(kind, out, config, inputs, seed=cfg.seed) as stage:
        t0 = time.perf_counter()
        meta: dict[str, Any] = {"kind": kind, "config": config}
        if kind == "pop":
            save_file({"counts": torch.from_numpy(pop.counts(seqs, n_items))}, str(out / WEIGHTS))
            meta |= {"params": 0, "training": _summary(t0)}
        elif kind == "knn":
            emb = np.load(files["embeddings"])
            if emb.ndim != 2 or emb.shape[0] != n_items:
                raise DataError(f"embeddings of shape {emb.shape} do not match the run's {n_items} items",
                                path=files["embeddings"])
            save_file({"embeddings": torch.from_numpy(knn.normalise(emb)),  # the settings too: evaluation
                       "recency_weights": torch.from_numpy(knn.recency_weights(cfg.last_n, cfg.decay)),  # reuses
                       "exclude_history": torch.tensor([cfg.exclude_history])}, str(out / WEIGHTS))  # by weights
            meta |= {"params": 0, "training": _summary(t0)}
        else:
            from semid.seqrec import models, train

            hist, targets, _ = data.eval_histories(load_table(run_dir, "val"))
            summary = train.fit(cfg, n_items, seqs, (hist, targets), out, resume=resume)
            _, args, _, state = train.load_checkpoint_weights(Path(summary["best_checkpoint"]))
            save_file({k: v.contiguous() for k, v in state.items()}, str(out / WEIGHTS))
            meta |= {"args": args, "loss": train.loss_name(cfg),
                     "params": models.num_params(models.build(args)), "training": summary}
        artifacts.write_json(out / CONFIG, meta)
        stage.outputs = [WEIGHTS, CONFIG]
        stage.extra["training"] = meta["training"]
    best = meta["training"]["best_val_recall@10"]
    log.info("%s: %s parameters, best validation Recall@10 %s, %.0f s → %s", kind, f"{meta['params']:,}",
             "n/a" if best is None else f"{best:.4f}", meta["training"]["train_wall_s"], out)
    return out


def _summary(t0: float) -> dict[str, Any]:
    return {"train_wall_s": round(time.perf_counter() - t0, 1), "epochs": 0, "best_val_recall@10": None}


def ranker(folder: Path, *, beam_size: int, top_k: int, constrained: bool = True, cold_items: np.ndarray | None = None,
           cold_start_eps: float | None = None, batch_users: int = 256, device: str = "cpu"):
    """A ranker for :mod:`semid.evaluate.stage`: ``rank(histories, users) -> (items [U, top_k], None)``.

    Scores the full catalogue with one matmul per batch of users; ``beam_size``, ``constrained``
    and the cold-start settings do not apply to these models.
    """
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise DataError(f"{folder} holds no trained baseline ({WEIGHTS} + {CONFIG}): train it first")
    meta = artifacts.read_json(folder / CONFIG)
    kind, cfg, weights = meta["kind"], meta["config"], load_file(str(folder / WEIGHTS))
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    max_items: int | None = None

    if kind == "pop":
        count = weights["counts"].numpy()
        best = pop.top_items(count, top_k)

        def scores_top(hists: list[np.ndarray]) -> np.ndarray:
            return np.broadcast_to(best, (len(hists), len(best)))
    elif kind == "knn":
        emb, recency = weights["embeddings"].to(device), weights["recency_weights"]
        exclude = bool(weights["exclude_history"].item())
        max_items = len(recency)

        def scores_top(hists: list[np.ndarray]) -> np.ndarray:
            return knn.rank(hists, emb, top_k, recency, exclude).cpu().numpy()
    else:
        from semid.seqrec import models

        model = models.build(meta["args"])
        model.load_state_dict(weights)
        model = model.to(device).eval()
        max_items = meta["args"]["max_len"]
        mask = model.mask_token if kind == "bert4rec" else None

        def scores_top(hists: list[np.ndarray]) -> np.ndarray:
            x, last = data.history_batch(hists, max_items, mask)
            x, last = x.to(device), last.to(device)
            h = model(x)[torch.arange(len(x), device=device), last]
            k = min(top_k, model.args.n_items)
            return torch.topk(models.scores(model, h), k, dim=1).indices.cpu().numpy()

    @torch.no_grad()
    def rank(histories: list[np.ndarray], users: np.ndarray) -> tuple[np.ndarray, None]:
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        order = np.argsort([len(h) for h in hist], kind="stable")
        items = np.full((len(hist), top_k), -1, dtype=np.int64)
        for a in range(0, len(order), batch_users):
            idx = order[a:a + batch_users]
            got = scores_top([hist[i] for i in idx])
            items[idx, :got.shape[1]] = got
        return items, None

    info: dict[str, Any] = {"kind": kind, "loss": meta.get("loss"), "params": meta.get("params", 0),
                            "seed": cfg.get("seed"), "max_items": max_items, "preset": None,
                            "training": meta.get("training")}
    return rank, info
