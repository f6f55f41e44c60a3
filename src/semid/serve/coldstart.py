"""Semantic IDs for products the catalogue does not hold: text → the run's sentence encoder → the
frozen ID model → an ID kept unique against the catalogue (by its collision code, or re-encoded to
the nearest free code, as ``semid ids assign`` does), with the nearest catalogue items and the branch of the code tree it joins."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.run import RunFolder, check_folder, stale_inputs
from semid.embed.config import EmbedConfig
from semid.embed.encode import encode, load_model
from semid.ids.assign import folder_scheme
from semid.ids.collisions import unique_ids
from semid.ids.methods import load_codec
from semid.models.knn import normalise
from semid.serve.catalogue import Catalogue, InputError

MAX_NEW, MAX_TEXT = 32, 4000  # new items per request, characters per text


def embed_config(run: RunFolder) -> EmbedConfig:
    """The encoder settings the run's catalogue embeddings were made with (its embed manifest)."""
    manifest = artifacts.load_manifest(run.embed) or {}
    # run folders written before 0.2 name the accelerator "device"
    return EmbedConfig(**{("accelerator" if k == "device" else k): v for k, v in manifest.get("config", {}).items()})


class ColdStart:
    """Assigns IDs with the ID model of ``catalogue.ids_name``; the encoder loads on first use."""

    def __init__(self, run: RunFolder, catalogue: Catalogue, device: str = "cpu"):
        folder = run.ids_dir(catalogue.ids_name)
        fix = f"retrain them with `semid ids train --out {run} --force` (and the same settings)"
        manifest = check_folder("ids train", run.need(folder, "semid ids train"), fix)
        if stale_inputs(manifest.get("inputs", {}), {"embeddings": run.embeddings}):
            raise DataError(f"{folder} was trained on other item embeddings ({run.embeddings} changed since): {fix}")
        self.catalogue, self.device = catalogue, device
        self.codec, self.scheme = load_codec(folder), folder_scheme(manifest)
        self.embeddings = normalise(np.load(run.need(run.embeddings, "semid embed")))
        self.cfg = embed_config(run)
        self._encoder = None
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._encoder is None:
                self._encoder = load_model(self.cfg.model, self.device, self.cfg.fp16, self.cfg.max_seq_length)
            return encode(self._encoder, texts, batch_size=self.cfg.batch_size, normalize=self.cfg.normalize)

    def assign(self, texts: list[str], nearest: int = 5, neighbours: int = 8) -> list[dict[str, Any]]:
        """One record per text: its Semantic ID, how many catalogue items share its first L codes,
        its ``nearest`` catalogue items by text similarity and up to ``neighbours`` items of the
        deepest branch of the code tree it shares with the catalogue."""
        texts = check_texts(texts)
        x = self.embed(texts)
        cat = self.catalogue
        raw = self.codec.codes(x)
        full = unique_ids(raw, self.scheme, codec=self.codec, x=x, existing=cat.codes)  # unique against all
        moved = (full[:, :-1] != raw).any(1)
        sims = normalise(x) @ self.embeddings.T
        out = []
        for text, ids_row, dedup, was_moved, sim in zip(texts, full.tolist(), full[:, -1], moved, sims):
            sid = ids_row[:cat.id_length]
            shared, ids = cat.shared_prefix(sid[:cat.levels])
            top = np.argsort(-sim, kind="stable")[:nearest]
            out.append({"text": text, "sid": sid, "same_codes": int(dedup) if cat.extra_code else int(was_moved),
                        "reencoded": bool(was_moved), "shared_levels": shared,
                        "nearest": [cat.describe(i) | {"similarity": round(float(sim[i]), 4)} for i in top],
                        "neighbours": [cat.describe(i) for i in ids[:neighbours]]})
        return out


def check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, list):
        raise InputError("new items come as a list of texts (title, brand, description …)")
    if not texts or len(texts) > MAX_NEW:
        raise InputError(f"pass 1 to {MAX_NEW} new items; got {len(texts)}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip() or len(t) > MAX_TEXT]
    if bad:
        raise InputError(f"new item(s) {bad[:10]} are not texts of 1 to {MAX_TEXT} characters")
    return [t.strip() for t in texts]
