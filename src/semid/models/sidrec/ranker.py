"""A trained SID-GRU / SID-BERT4Rec folder as a ranker (trie-constrained or free beam search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semid.generative.beam import generative_ranker
from semid.generative.folder import read_folder
from semid.generative.tokens import SIDTokenizer, history_tokens
from semid.models.common import RankOptions
from semid.models.sidrec.config import SIDRecConfig
from semid.models.sidrec.model import SIDArgs, SIDEnsemble, SIDRecModel, build


def load(folder: Path, config: type[SIDRecConfig],
         device: str | torch.device = "cpu") -> tuple[SIDRecModel | SIDEnsemble, SIDTokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, config.json dict) of a trained folder."""
    meta, args, state, tok = read_folder(folder)
    model = build(config.network, SIDArgs.from_dict(args))
    model.load_state_dict(state)
    return model.to(device).eval(), tok, meta


def ranker(folder: Path, config: type[SIDRecConfig], opts: RankOptions):
    model, tok, meta = load(folder, config, opts.device)
    item_tokens = tok.item_tokens.numpy()
    max_items = meta["args"]["max_items"]
    rank = generative_ranker(lambda hist, users: model.start(history_tokens(hist, item_tokens, flat=False).to(opts.device)),
                             tok, max_items=max_items, beam_size=opts.beam_size, top_k=opts.top_k,
                             constrained=opts.constrained, cold_items=opts.cold_items,
                             cold_start_eps=opts.cold_start_eps,
                             cold_start_codes=opts.cold_start_codes, batch_users=opts.batch_users, device=opts.device)
    return rank, {"loss": "per-level CE", "max_items": max_items, "ids": meta.get("ids")}
