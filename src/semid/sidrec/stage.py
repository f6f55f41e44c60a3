"""The ``sid_gru`` / ``sid_bert4rec`` stages: train on a run's data and Semantic IDs →
``<run>/models/<name>/``.

    semid train sid-gru --out runs/beauty threads=1
    semid train sid-bert4rec --out runs/beauty --resume     # continue from checkpoints/last.ckpt

Outputs: ``model.safetensors`` + ``config.json`` (model arguments, resolved config, tokenizer
shape), ``sid_codes.safetensors`` (the item → ID table it was trained with),
``checkpoints/{last,best}.ckpt``, ``logs/metrics.csv``, ``manifest.json``. :func:`ranker` turns
the folder into a ranker for :mod:`semid.evaluate.stage` (trie-constrained or free beam search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid import artifacts
from semid.errors import ConfigError
from semid.log import log
from semid.sidrec.config import SIDBert4RecConfig, SIDGRUConfig, SIDRecConfig
from semid.tiger.stage import model_dir, sid_data, sid_training, write_folder

MODELS: dict[str, type[SIDRecConfig]] = {"sid_gru": SIDGRUConfig, "sid_bert4rec": SIDBert4RecConfig}


def run(cfg: SIDRecConfig, run_dir: Path, *, ids: Path | None = None, force: bool = False,
        resume: bool = False) -> Path:
    """Train the model ``cfg``'s type names (SIDGRUConfig or SIDBert4RecConfig); returns its folder."""
    from semid.sidrec import train

    kinds = [k for k, c in MODELS.items() if type(cfg) is c]
    if not kinds:
        raise ConfigError(f"{type(cfg).__name__} is not a Semantic-ID baseline config ({', '.join(MODELS)})")
    kind = kinds[0]
    job = sid_training(cfg, run_dir, ids, force=force, resume=resume, kind=kind)
    if job is None:
        return model_dir(run_dir, cfg.name)
    out = job.out
    codes, tok, _, seqs, val = sid_data(run_dir, job.ids_folder, cfg.max_items)
    log.info("%s: %s IDs (%d levels × %d + dedup %d), %d items", kind, job.ids_folder.name, tok.num_levels,
             tok.codebook_size, tok.dedup_size, tok.num_items)
    with artifacts.StageRun(kind, out, job.config, job.inputs, seed=cfg.seed) as stage:
        summary = train.fit(cfg, tok, seqs, val, out, resume=resume)
        _, args, state = train.load_checkpoint_weights(Path(summary["best_checkpoint"]))
        write_folder(out, stage, {"kind": kind, "args": args, "config": job.config, "training": summary,
                                  "tokenizer": tok.spec(), "ids": str(job.ids_folder)}, state, codes)
    log.info("%s: best validation Recall@10 %.4f (on %d users) after %d epochs in %.0f s → %s", kind,
             summary["best_val_recall@10"] or 0.0, summary["val_users"], summary["epochs"], summary["train_wall_s"], out)
    return out


def load(folder: Path, device: str | torch.device = "cpu"):
    """(model in eval mode, tokenizer, config.json dict) of a trained SID-GRU / SID-BERT4Rec folder."""
    from semid.sidrec.models import SIDArgs, build_model

    from semid.tiger.stage import read_folder

    meta, args, state, tok = read_folder(folder, "semid train sid-gru` or `semid train sid-bert4rec")
    model = build_model(SIDArgs(**args))
    model.load_state_dict(state)
    return model.to(device).eval(), tok, meta


def ranker(folder: Path, *, beam_size: int, top_k: int, constrained: bool = True, cold_items: np.ndarray | None = None,
           cold_start_eps: float | None = None, batch_users: int = 256, device: str = "cpu"):
    """A ranker for :mod:`semid.evaluate.stage` (see :func:`semid.tiger.beam.generative_ranker`)."""
    from semid.sidrec.data import item_tokens_3d
    from semid.tiger.beam import generative_ranker

    model, tok, meta = load(folder, device)
    item_tokens = tok.item_tokens.numpy()
    max_items = meta["args"]["max_items"]
    rank = generative_ranker(lambda hist, users: model.start(item_tokens_3d(hist, item_tokens).to(device)), tok,
                             max_items=max_items, beam_size=beam_size, top_k=top_k, constrained=constrained,
                             cold_items=cold_items, cold_start_eps=cold_start_eps, batch_users=batch_users,
                             device=device)
    info: dict[str, Any] = {"kind": meta["kind"], "loss": "per-level CE", "params": meta.get("params"),
                            "seed": meta["config"].get("seed"), "max_items": max_items, "preset": None,
                            "ids": meta.get("ids"), "training": meta.get("training"), "beam_size": beam_size,
                            "constrained": constrained, "cold_start_eps": cold_start_eps}
    return rank, info
