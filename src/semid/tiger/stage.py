"""The ``tiger`` stage: train on a run's data and Semantic IDs → ``<run>/models/<name>/``.

    semid train tiger --out runs/beauty                  # preset cpu
    semid train tiger --out runs/beauty preset=paper     # the paper's recipe
    semid train tiger --out runs/beauty --resume         # continue from checkpoints/last.ckpt

Outputs: ``model.safetensors`` + ``config.json`` (model arguments, resolved config, tokenizer
shape: the model rebuilds from these alone), ``sid_codes.safetensors`` (the item → ID table it
was trained with), ``checkpoints/{last,best}.ckpt``, ``logs/metrics.csv``, ``manifest.json``.
:func:`ranker` turns the folder into a ranker for :mod:`semid.evaluate.stage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid import artifacts
from semid.data.prepare import load_table
from semid.data.prepare import stage_dir as data_dir
from semid.errors import DataError
from semid.ids.tokens import SIDTokenizer
from semid.log import log
from semid.tiger.config import TigerConfig

MODELS_DIR = "models"
WEIGHTS, CONFIG, CODES = "model.safetensors", "config.json", "sid_codes.safetensors"


def model_dir(run_dir: Path, name: str = "tiger") -> Path:
    return Path(run_dir) / MODELS_DIR / name


def resolve_ids(run_dir: Path, cfg: TigerConfig, default: Path | None = None) -> Path:
    """The Semantic-ID folder to train on: ``cfg.ids``, else ``default``, else the only one."""
    root = Path(run_dir) / "ids"
    if cfg.ids:
        folder = root / cfg.ids
        if not (folder / "semantic_ids.parquet").is_file():
            raise DataError(f"{folder}/semantic_ids.parquet not found: run `semid ids train --out {run_dir}` first")
        return folder
    if default is not None and (Path(default) / "semantic_ids.parquet").is_file():
        return Path(default)
    found = sorted(p.parent for p in root.glob("*/semantic_ids.parquet")) if root.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"no Semantic IDs under {root}: run `semid ids train --out {run_dir}` first")
    raise DataError(f"several Semantic IDs under {root} ({', '.join(p.name for p in found)}): pick one with ids=<name>")


@dataclass
class SIDTraining:
    """What a model trained on a run's Semantic IDs (TIGER, SID-GRU, SID-BERT4Rec) starts from."""

    out: Path
    ids_folder: Path
    config: dict[str, Any]
    inputs: dict[str, str]


def sid_training(cfg: Any, run_dir: Path, ids: Path | None, *, force: bool, resume: bool,
                 kind: str) -> SIDTraining | None:
    """Resolve the IDs folder and the model folder; ``None`` when the folder is up to date."""
    ids_folder = resolve_ids(run_dir, cfg, ids)
    out = model_dir(run_dir, cfg.name)
    inputs = artifacts.fingerprint_inputs({
        "train": data_dir(run_dir) / "train.parquet", "val": data_dir(run_dir) / "val.parquet",
        "semantic_ids": ids_folder / "semantic_ids.parquet"})
    config = cfg.model_dump(mode="json") | {"ids_folder": ids_folder.name}
    if not force and not resume and artifacts.is_fresh(out, config, inputs):
        log.info("%s: %s is up to date (reused; --force to retrain)", kind, out)
        return None
    return SIDTraining(out, ids_folder, config, inputs)


def sid_data(run_dir: Path, ids_folder: Path, max_items: int):
    """(codes, tokenizer, train table, training sequences, validation (histories, targets, users))."""
    from semid.ids.stage import load_semantic_ids
    from semid.tiger import data

    codes, _, k = load_semantic_ids(ids_folder)
    tok = SIDTokenizer.from_codes(codes, codebook_size=k)
    train_df, val_df = load_table(run_dir, "train"), load_table(run_dir, "val")
    if len(codes) != load_table(run_dir, "items").height:
        raise DataError(f"{ids_folder} holds IDs for {len(codes)} items but the run has a different catalogue")
    hist, targets = data.eval_histories(val_df, tok.item_tokens.numpy(), max_items)
    val = (hist, targets, val_df["user_id"].to_numpy().astype(np.int64))
    return codes, tok, train_df, data.sequences(train_df), val


def write_folder(out: Path, stage: artifacts.StageRun, meta: dict[str, Any], state: dict[str, torch.Tensor],
                 codes: np.ndarray) -> None:
    """Weights, the item → ID table and ``config.json`` (``meta`` + the parameter count) of a trained model."""
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / WEIGHTS))
    save_file({"codes": torch.from_numpy(np.ascontiguousarray(codes))}, str(out / CODES))
    artifacts.write_json(out / CONFIG, meta | {"params": sum(int(v.numel()) for v in state.values())})
    stage.outputs = [WEIGHTS, CODES, CONFIG]
    stage.extra["training"] = meta["training"]


def run(cfg: TigerConfig, run_dir: Path, *, ids: Path | None = None, force: bool = False,
        resume: bool = False) -> Path:
    from semid.tiger import train

    job = sid_training(cfg, run_dir, ids, force=force, resume=resume, kind="tiger")
    if job is None:
        return model_dir(run_dir, cfg.name)
    out = job.out
    codes, tok, train_df, seqs, val = sid_data(run_dir, job.ids_folder, cfg.max_items)
    log.info("tiger: %s IDs (%d levels × %d + dedup %d), %d items; preset %s, encoder %s",
             job.ids_folder.name, tok.num_levels, tok.codebook_size, tok.dedup_size, tok.num_items, cfg.preset,
             cfg.encoder_mask)
    with artifacts.StageRun("tiger", out, job.config, job.inputs, seed=cfg.seed) as stage:
        summary = train.fit(cfg, tok, seqs, train_df["user_id"].to_numpy().astype(np.int64), val, out, resume=resume)
        _, args, state = train.load_checkpoint_weights(Path(summary["best_checkpoint"]))
        write_folder(out, stage, {"kind": "tiger", "args": args, "config": job.config, "tokenizer": tok.spec(),
                                  "ids": str(job.ids_folder), "training": summary}, state, codes)
    log.info("tiger: best validation Recall@10 %.4f (on %d users) after %d steps in %.0f s → %s",
             summary["best_val_recall@10"] or 0.0, summary["val_users"], summary["steps"], summary["train_wall_s"], out)
    return out


def load(folder: Path, device: str | torch.device = "cpu"):
    """(model in eval mode, tokenizer, config.json dict) of a trained TIGER folder."""
    from semid.tiger.model import ModelArgs, Tiger

    meta, args, state, tok = read_folder(folder, "semid train tiger")
    model = Tiger(ModelArgs(**args))
    model.load_state_dict(state)
    return model.to(device).eval(), tok, meta


def read_folder(folder: Path, command: str) -> tuple[dict, dict, dict[str, torch.Tensor], SIDTokenizer]:
    """(config.json, model arguments, weights, tokenizer) of a folder of any model that decodes
    Semantic IDs (TIGER, SID-GRU, SID-BERT4Rec); ``command`` is named when the weights are missing."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file():
        raise DataError(f"{folder / WEIGHTS} not found: run `{command}` first")
    meta = artifacts.read_json(folder / CONFIG)
    args = {**meta["args"], "level_ranges": [tuple(r) for r in meta["args"]["level_ranges"]]}
    codes = load_file(str(folder / CODES))["codes"].numpy()
    spec = meta["tokenizer"]
    tok = SIDTokenizer(codes, codebook_size=spec["codebook_size"], dedup_size=spec["dedup_size"])
    return meta, args, load_file(str(folder / WEIGHTS)), tok


def ranker(folder: Path, *, beam_size: int, top_k: int, constrained: bool = True, cold_items: np.ndarray | None = None,
           cold_start_eps: float | None = None, batch_users: int = 256, device: str = "cpu"):
    """A ranker for :mod:`semid.evaluate.stage` (see :func:`semid.tiger.beam.generative_ranker`)."""
    from semid.tiger import data
    from semid.tiger.beam import generative_ranker

    model, tok, meta = load(folder, device)
    item_tokens = tok.item_tokens.numpy()
    max_items, buckets = meta["args"]["max_items"], meta["args"]["user_buckets"]

    def start(hist: list[np.ndarray], users: np.ndarray):
        u = torch.from_numpy(users % buckets).to(device) if buckets else None
        return model.start(data.history_tokens(hist, item_tokens).to(device), u)

    rank = generative_ranker(start, tok, max_items=max_items, beam_size=beam_size, top_k=top_k,
                             constrained=constrained, cold_items=cold_items, cold_start_eps=cold_start_eps,
                             batch_users=batch_users, device=device)
    info: dict[str, Any] = {"kind": "tiger", "loss": "next-ID CE", "params": meta.get("params"),
                            "beam_size": beam_size, "constrained": constrained,
                            "cold_start_eps": cold_start_eps, "preset": meta["config"].get("preset"),
                            "seed": meta["config"].get("seed"), "max_items": max_items,
                            "ids": meta.get("ids"), "training": meta.get("training")}
    return rank, info
