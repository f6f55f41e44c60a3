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
from safetensors.torch import save_file

from semid import artifacts
from semid.data.prepare import load_table
from semid.data.prepare import stage_dir as data_dir
from semid.errors import ConfigError, DataError
from semid.ids.tokens import SIDTokenizer
from semid.log import log
from semid.sidrec.config import SIDBert4RecConfig, SIDGRUConfig, SIDRecConfig
from semid.tiger.stage import CODES, CONFIG, WEIGHTS, model_dir, resolve_ids

MODELS: dict[str, type[SIDRecConfig]] = {"sid_gru": SIDGRUConfig, "sid_bert4rec": SIDBert4RecConfig}


def run(cfg: SIDRecConfig, run_dir: Path, *, ids: Path | None = None, force: bool = False,
        resume: bool = False) -> Path:
    """Train the model ``cfg``'s type names (SIDGRUConfig or SIDBert4RecConfig); returns its folder."""
    from semid.ids.stage import load_semantic_ids
    from semid.sidrec import train
    from semid.tiger import data

    kinds = [k for k, c in MODELS.items() if type(cfg) is c]
    if not kinds:
        raise ConfigError(f"{type(cfg).__name__} is not a Semantic-ID baseline config ({', '.join(MODELS)})")
    kind = kinds[0]
    ids_folder = resolve_ids(run_dir, cfg, ids)
    out = model_dir(run_dir, cfg.name)
    inputs = artifacts.fingerprint_inputs({
        "train": data_dir(run_dir) / "train.parquet", "val": data_dir(run_dir) / "val.parquet",
        "semantic_ids": ids_folder / "semantic_ids.parquet"})
    config = cfg.model_dump(mode="json") | {"ids_folder": ids_folder.name}
    if not force and not resume and artifacts.is_fresh(out, config, inputs):
        log.info("%s: %s is up to date (reused; --force to retrain)", kind, out)
        return out

    codes, _, k = load_semantic_ids(ids_folder)
    tok = SIDTokenizer.from_codes(codes, codebook_size=k)
    train_df, val_df = load_table(run_dir, "train"), load_table(run_dir, "val")
    if len(codes) != load_table(run_dir, "items").height:
        raise DataError(f"{ids_folder} holds IDs for {len(codes)} items but the run has a different catalogue")
    seqs = data.sequences(train_df)
    hist, targets = data.eval_histories(val_df, tok.item_tokens.numpy(), cfg.max_items)
    log.info("%s: %s IDs (%d levels × %d + dedup %d), %d items", kind, ids_folder.name, tok.num_levels,
             tok.codebook_size, tok.dedup_size, tok.num_items)
    with artifacts.StageRun(kind, out, config, inputs, seed=cfg.seed) as stage:
        summary = train.fit(cfg, tok, seqs, (hist, targets, val_df["user_id"].to_numpy().astype(np.int64)), out,
                            resume=resume)
        _, args, state = train.load_checkpoint_weights(Path(summary["best_checkpoint"]))
        save_file({name: v.contiguous() for name, v in state.items()}, str(out / WEIGHTS))
        save_file({"codes": torch.from_numpy(np.ascontiguousarray(codes))}, str(out / CODES))
        params = sum(int(v.numel()) for v in state.values())
        artifacts.write_json(out / CONFIG, {"kind": kind, "args": args, "config": config, "params": params,
                                            "training": summary, "tokenizer": tok.spec(), "ids": str(ids_folder)})
        stage.outputs = [WEIGHTS, CODES, CONFIG]
        stage.extra["training"] = summary
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
