"""One interface over the three ID methods: load a trained folder, map embeddings to codes.

    codec = load_codec(folder)     # reads config.json (+ model.safetensors / codebooks.safetensors)
    codes = codec.codes(x)         # [N, L] int64, deterministic for a given x
    x_hat = codec.reconstruct(x)   # [N, d] what the IDs keep of x
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semid.errors import DataError
from semid.ids import random_ids, rqkmeans

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
CODEBOOKS_FILE = "codebooks.safetensors"
CHUNK = 65536


@dataclass
class Codec:
    method: str
    input_dim: int
    levels: int
    codebook_size: int
    seed: int
    codebooks: np.ndarray  # [L, K, D]: latent space (rqvae) or input space (rqkmeans, random)
    model: Any = None  # the RQVAE module for rqvae

    def check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"embeddings must be a 2-D matrix [items, dim], got shape {x.shape}")
        if x.shape[1] != self.input_dim:
            raise DataError(f"embeddings have dimension {x.shape[1]} but this {self.method} model was trained on "
                            f"{self.input_dim}-d embeddings: embed with the same model as the catalogue")
        return np.ascontiguousarray(x, dtype=np.float32)

    def codes(self, x: np.ndarray) -> np.ndarray:
        x = self.check(x)
        if self.method == "rqkmeans":
            return rqkmeans.assign(x, self.codebooks)
        if self.method == "random":
            return random_ids.assign(x, levels=self.levels, codebook_size=self.codebook_size, seed=self.seed)
        import torch

        out = np.empty((len(x), self.levels), dtype=np.int64)
        with torch.no_grad():
            for s in range(0, len(x), CHUNK):
                out[s:s + CHUNK] = self.model.codes(torch.from_numpy(x[s:s + CHUNK])).numpy()
        return out

    def reconstruct(self, x: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """Reconstruction of ``x`` through its codes (``codes`` given: those codes, e.g. random IDs)."""
        x = self.check(x)
        if codes is None:
            codes = self.codes(x)
        if self.method != "rqvae":
            return rqkmeans.books_sum(codes, self.codebooks)
        import torch

        out = np.empty_like(x)
        with torch.no_grad():
            for s in range(0, len(x), CHUNK):
                out[s:s + CHUNK] = self.model.decode_codes(torch.from_numpy(codes[s:s + CHUNK])).numpy()
        return out

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.method == "rqvae":
            from semid.ids import rqvae

            rqvae.save(self.model, folder)  # config.json + model.safetensors
        else:
            (folder / CONFIG_FILE).write_text(json.dumps({
                "architecture": self.method, "method": self.method, "input_dim": self.input_dim,
                "levels": self.levels, "codebook_size": self.codebook_size, "seed": self.seed}, indent=2) + "\n")
            save_file({"codebooks": self.codebooks}, str(folder / MODEL_FILE))
        save_file({f"level_{i + 1}": np.ascontiguousarray(b) for i, b in enumerate(self.codebooks)},
                  str(folder / CODEBOOKS_FILE))


def from_rqvae(model) -> Codec:
    c = model.config
    return Codec("rqvae", c.input_dim, c.levels, c.codebook_size, int(c.extra.get("seed", 0)),
                 model.quantizer.codebooks.detach().numpy().copy(), model)


def load_codec(folder: Path) -> Codec:
    """Rebuild the trained ID model of ``folder`` from its config.json and safetensors files."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path} not found: train IDs first with `semid ids train`")
    raw = json.loads(path.read_text())
    method = raw.get("method") or raw.get("extra", {}).get("method")
    if method == "rqvae" or raw.get("architecture") == "RQVAE":
        from semid.ids import rqvae

        return from_rqvae(rqvae.load(folder))
    from safetensors.numpy import load_file

    books = load_file(str(folder / MODEL_FILE))["codebooks"]
    return Codec(method, raw["input_dim"], raw["levels"], raw["codebook_size"], raw["seed"], books)
