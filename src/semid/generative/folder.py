"""Folders of models that decode Semantic IDs (TIGER, SID-GRU, SID-BERT4Rec): what they train on
and how they are written and read.

A folder holds ``model.safetensors`` + ``config.json`` (model arguments, resolved config,
tokenizer shape: the model rebuilds from these alone) and ``sid_codes.safetensors`` (the item →
ID table it was trained with), besides the checkpoints and logs of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.run import WEIGHTS, RunFolder, read_model_folder
from semid.generative.tokens import SIDTokenizer
from semid.ids.table import has_extra_code, load_semantic_ids
from semid.sequences import eval_histories, sequences

CODES = "sid_codes.safetensors"  # the item → ID table a model was trained with


def resolve_ids(run: RunFolder, name: str | None, default: Path | None = None) -> Path:
    """The Semantic-ID folder to train on: ``name``, else ``default``, else the only one."""
    if name:
        return run.need(run.semantic_ids(name), "semid ids train").parent
    if default is not None and (Path(default) / "semantic_ids.parquet").is_file():
        return Path(default)
    found = sorted(p.parent for p in run.ids_root.glob("*/semantic_ids.parquet")) if run.ids_root.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"no Semantic IDs under {run.ids_root}: run `semid ids train --out {run}` first")
    raise DataError(f"several Semantic IDs under {run.ids_root} ({', '.join(p.name for p in found)}): "
                    "pick one with ids=<name>")


@dataclass
class SIDData:
    """What a model trained on a run's Semantic IDs starts from."""

    codes: np.ndarray  # [N, L+1]: L codes then the dedup code (0 for IDs unique at L codes)
    tokenizer: SIDTokenizer
    train: pl.DataFrame
    sequences: list[np.ndarray]
    val: tuple[list[np.ndarray], np.ndarray, np.ndarray]  # histories (cut to max_items), targets, users


def sid_data(run: RunFolder, ids_folder: Path, max_items: int) -> SIDData:
    codes, _, k = load_semantic_ids(ids_folder)
    tok = SIDTokenizer.from_codes(codes, codebook_size=k, extra_code=has_extra_code(ids_folder))
    train = run.table("train")
    if len(codes) != run.table("items").height:
        raise DataError(f"{ids_folder} holds IDs for {len(codes)} items but the run has a different catalogue")
    return SIDData(codes, tok, train, sequences(train), eval_histories(run.table("val"), max_items))


def write_folder(out: Path, meta: dict[str, Any], state: dict[str, torch.Tensor], codes: np.ndarray) -> dict[str, Any]:
    """Weights and the item → ID table of a trained model; returns ``meta`` + the parameter count
    (the caller writes it as ``config.json``)."""
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / WEIGHTS))
    save_file({"codes": torch.from_numpy(np.ascontiguousarray(codes))}, str(out / CODES))
    return meta | {"params": sum(int(v.numel()) for v in state.values())}


def read_folder(folder: Path) -> tuple[dict, dict, dict[str, torch.Tensor], SIDTokenizer]:
    """(config.json, model arguments, weights, tokenizer) of a trained folder."""
    folder = Path(folder)
    meta, weights = read_model_folder(folder)
    args = {**meta["args"], "level_ranges": [tuple(r) for r in meta["args"]["level_ranges"]]}
    codes = artifacts.read_with(folder / CODES, load_file)["codes"].numpy()
    spec = meta["tokenizer"]
    tok = SIDTokenizer(codes, codebook_size=spec["codebook_size"], dedup_size=spec["dedup_size"])
    return meta, args, weights, tok
