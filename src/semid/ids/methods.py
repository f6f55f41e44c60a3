"""The one table of Semantic-ID methods: name → how to fit it and how to load a fitted one.

Adding a method is one module (a fit function and a :class:`~semid.ids.codec.Codec` subclass) and
one entry in :data:`METHODS`; ``semid ids train method=<name>`` then works everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semid.core.errors import DataError
from semid.ids import balanced, collaborative, random_ids, rqkmeans, rqvae_train
from semid.ids.codec import CONFIG_FILE, Codec

if TYPE_CHECKING:
    from semid.ids.config import IdsConfig

# fit(embeddings [N, d], config) -> (codec, the items' codes [N, L], training curve points)
Fit = Callable[[np.ndarray, "IdsConfig"], tuple[Codec, np.ndarray, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Method:
    fit: Fit
    codec: type[Codec]
    doc: str
    needs_sequences: bool = False  # fit(..., sequences=the run's training sequences)


METHODS: dict[str, Method] = {
    "rqvae": Method(rqvae_train.fit, rqvae_train.RQVAECodec, "RQ-VAE (TIGER)"),
    "rqkmeans": Method(rqkmeans.fit_codec, rqkmeans.KMeansCodec, "residual k-means"),
    "rqkmeans_balanced": Method(balanced.fit_codec, balanced.BalancedKMeansCodec,
                                "residual k-means with every code holding at most ceil(N/K) items per level"),
    "rqvae_cf": Method(collaborative.fit, rqvae_train.RQVAECodec,
                       "RQ-VAE aligned with collaborative embeddings of the training sequences + code diversity (LETTER-style)",
                       needs_sequences=True),
    "random": Method(random_ids.fit_codec, random_ids.RandomCodec, "random codes of the same shape (ablation)"),
}


def load_codec(folder: Path) -> Codec:
    """Rebuild the trained ID model of ``folder`` from its config.json and safetensors files."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path} not found: train IDs first with `semid ids train`")
    raw = json.loads(path.read_text())
    method = raw.get("method") or raw.get("extra", {}).get("method")
    if raw.get("architecture") == "RQVAE":
        method = "rqvae"
    if method not in METHODS:
        raise DataError(f"unknown ID method {method!r} (known: {', '.join(METHODS)})", path=path)
    return METHODS[method].codec.load(folder, raw)
