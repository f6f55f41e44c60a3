"""A trained TIGER folder as a ranker (:func:`semid.generative.beam.generative_ranker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.generative.beam import generative_ranker
from semid.generative.folder import read_folder
from semid.generative.tokens import SIDTokenizer, history_tokens
from semid.models.common import RankOptions
from semid.models.tiger.config import TigerConfig
from semid.models.tiger.model import ModelArgs, Tiger


def load(folder: Path, device: str | torch.device = "cpu") -> tuple[Tiger, SIDTokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, config.json dict) of a trained TIGER folder."""
    meta, args, state, tok = read_folder(folder)
    model = Tiger(ModelArgs(**args))
    model.load_state_dict(state)
    return model.to(device).eval(), tok, meta


def ranker(folder: Path, config: type[TigerConfig], opts: RankOptions):
    model, tok, meta = load(folder, opts.device)
    item_tokens = tok.item_tokens.numpy()
    max_items, buckets = meta["args"]["max_items"], meta["args"]["user_buckets"]

    def start(hist: list[np.ndarray], users: np.ndarray):
        u = torch.from_numpy(users % buckets).to(opts.device) if buckets else None
        return model.start(history_tokens(hist, item_tokens).to(opts.device), u)

    rank = generative_ranker(start, tok, max_items=max_items, beam_size=opts.beam_size, top_k=opts.top_k,
                             constrained=opts.constrained, cold_items=opts.cold_items,
                             cold_start_eps=opts.cold_start_eps,
                             cold_start_codes=opts.cold_start_codes, batch_users=opts.batch_users, device=opts.device)
    info: dict[str, Any] = {"loss": "next-ID CE", "preset": meta["config"].get("preset"), "max_items": max_items,
                            "ids": meta.get("ids")}
    return rank, info
