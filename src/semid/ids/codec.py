"""One interface over the ID methods: map embeddings to codes, reconstruct, save and load.

    codec = methods.load_codec(folder)  # reads config.json (+ model.safetensors / codebooks.safetensors)
    codes = codec.codes(x)              # [N, L] int64, deterministic for a given x
    x_hat = codec.reconstruct(x)        # [N, d] what the IDs keep of x

A method subclasses :class:`Codec` (``assign`` and, when its codebooks live in another space,
``latent``, ``decode`` and ``save``) and registers itself in :data:`semid.ids.methods.METHODS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from semid.core.artifacts import read_with
from semid.core.errors import DataError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
CODEBOOKS_FILE = "codebooks.safetensors"


@dataclass
class Codec:
    method: str
    input_dim: int
    levels: int
    codebook_size: int
    seed: int
    codebooks: np.ndarray  # [L, K, D]: in the input space (decode sums them), or a model's latent space

    def check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"embeddings must be a 2-D matrix [items, dim], got shape {x.shape}")
        if x.shape[1] != self.input_dim:
            raise DataError(f"embeddings have dimension {x.shape[1]} but this {self.method} model was trained on "
                            f"{self.input_dim}-d embeddings: embed with the same model as the catalogue")
        x = np.ascontiguousarray(x, dtype=np.float32)
        return x if x.flags.writeable else x.copy()  # a read-only memory map (cached embeddings): torch wants its own

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Codes [N, L] of checked float32 embeddings."""
        raise NotImplementedError

    def latent(self, x: np.ndarray) -> np.ndarray:
        """Checked embeddings in the space the codebooks live in (here: the input space)."""
        return x

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The embedding a code sequence stands for: the sum of its levels' codebook vectors."""
        return sum(self.codebooks[level][codes[:, level]] for level in range(codes.shape[1]))

    def codes(self, x: np.ndarray) -> np.ndarray:
        return self.assign(self.check(x))

    def reconstruct(self, x: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """Reconstruction of ``x`` through its codes (``codes`` given: those codes, e.g. random IDs)."""
        x = self.check(x)
        return self.decode(self.assign(x) if codes is None else codes)

    def describe(self) -> dict[str, Any]:
        return {"architecture": self.method, "method": self.method, "input_dim": self.input_dim, "levels": self.levels,
                "codebook_size": self.codebook_size, "seed": self.seed}

    def save(self, folder: Path) -> None:
        """``config.json`` + ``model.safetensors`` (rebuild from these alone) + ``codebooks.safetensors``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.save_model(folder)
        save_file({f"level_{i + 1}": np.ascontiguousarray(b) for i, b in enumerate(self.codebooks)},
                  str(folder / CODEBOOKS_FILE))

    def save_model(self, folder: Path) -> None:
        (folder / CONFIG_FILE).write_text(json.dumps(self.describe(), indent=2) + "\n")
        save_file({"codebooks": self.codebooks}, str(folder / MODEL_FILE))

    @classmethod
    def load(cls, folder: Path, raw: dict[str, Any]) -> Codec:
        books = read_with(Path(folder) / MODEL_FILE, load_file)["codebooks"]
        return cls(raw["method"], raw["input_dim"], raw["levels"], raw["codebook_size"], raw["seed"], books)
