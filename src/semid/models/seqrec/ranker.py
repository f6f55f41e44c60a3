"""SASRec, GRU4Rec and BERT4Rec folders as rankers: the full catalogue scored by matmuls per batch
of users (in chunks of items past 262,144); history items are not removed from the lists (as for TIGER)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from semid.core.run import read_model_folder
from semid.models.common import RankOptions, batched_ranker
from semid.models.seqrec.config import SeqRecConfig
from semid.models.seqrec.data import history_batch
from semid.models.seqrec.model import model_args, top_items


def ranker(folder: Path, config: type[SeqRecConfig], opts: RankOptions):
    meta, weights = read_model_folder(folder)
    model = config.network(model_args(meta["args"]))
    model.load_state_dict(weights)
    model = model.to(opts.device).eval()
    max_items = meta["args"]["max_len"]
    mask = model.mask_token if meta.get("loss") == "cloze" else None

    def top(hists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        x, last = history_batch(hists, max_items, mask)
        x, last = x.to(opts.device), last.to(opts.device)
        h = model(x)[torch.arange(len(x), device=opts.device), last]
        values, items = top_items(model, h, opts.top_k)
        return items.cpu().numpy(), values.cpu().numpy()

    info: dict[str, Any] = {"loss": meta.get("loss"), "max_items": max_items}
    return batched_ranker(top, opts, score_kind="logit"), info
