"""RQ-VAE: an MLP autoencoder whose latent is quantized by a residual quantizer.

Rajput et al., "Recommender Systems with Generative Retrieval" (TIGER, NeurIPS 2023), §3.1:
encoder 768 → 512 → 256 → 128 → 32 (ReLU), mirrored decoder, 3 levels of 256 codes, loss =
reconstruction + Σ_levels ‖sg[r] − e‖² + β‖r − sg[e]‖² with β = 0.25. Residual quantization as in
Zeghidour et al., "SoundStream" (2021) and Lee et al., "Autoregressive Image Generation using
Residual Quantization" (CVPR 2022). This file holds the model only; training lives in
:mod:`semid.ids.train`.

    model = RQVAE(RQVAEConfig(input_dim=384))
    out = model(x)                 # RQVAEOutput(recon [B, d], codes [B, L], losses)
    codes = model.codes(x)         # [B, L] int64: nearest codeword at each level
    save(model, folder); model = load(folder)   # config.json + model.safetensors rebuild it
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class RQVAEConfig:
    input_dim: int
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    levels: int = 3
    codebook_size: int = 256
    beta: float = 0.25
    extra: dict = field(default_factory=dict)  # free-form facts stored with the model (seed, method)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class QuantizerOutput(NamedTuple):
    quantized: torch.Tensor  # [B, D] sum of the chosen codewords, straight-through to the input
    codes: torch.Tensor  # [B, L] int64
    codebook_loss: torch.Tensor  # Σ_l ‖sg[r_l] − e_l‖², mean over the batch
    commit_loss: torch.Tensor  # Σ_l ‖r_l − sg[e_l]‖², mean over the batch
    residuals: torch.Tensor  # [L, B, D] the (detached) residual each level quantized


class ResidualQuantizer(nn.Module):
    """L codebooks of K vectors; level l quantizes what levels < l left over."""

    def __init__(self, *, levels: int, codebook_size: int, dim: int):
        super().__init__()
        # Overwritten by the k-means initialisation before training; small random otherwise.
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) * 0.01)

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    def nearest(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        book = self.codebooks[level]
        dist = residual.pow(2).sum(1, keepdim=True) - 2 * residual @ book.T + book.pow(2).sum(1)
        return dist.argmin(1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        residual, total = z, torch.zeros_like(z)
        codes, residuals = [], []
        codebook_loss = commit_loss = z.new_zeros(())
        for level in range(self.levels):
            idx = self.nearest(residual.detach(), level)
            e = self.codebooks[level][idx]
            codebook_loss = codebook_loss + (residual.detach() - e).pow(2).sum(1).mean()
            commit_loss = commit_loss + (residual - e.detach()).pow(2).sum(1).mean()
            residuals.append(residual.detach())
            codes.append(idx)
            total = total + e
            residual = residual - e.detach()
        quantized = z + (total - z).detach()  # straight-through estimator
        return QuantizerOutput(quantized, torch.stack(codes, 1), codebook_loss, commit_loss, torch.stack(residuals))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the codewords named by ``codes`` [B, L]."""
        return sum(self.codebooks[level][codes[:, level]] for level in range(codes.shape[1]))


class RQVAEOutput(NamedTuple):
    recon: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    recon_loss: torch.Tensor
    codebook_loss: torch.Tensor
    commit_loss: torch.Tensor
    residuals: torch.Tensor
    latent: torch.Tensor | None = None  # [B, D] the encoder's output, before quantization


class RQVAE(nn.Module):
    def __init__(self, config: RQVAEConfig):
        super().__init__()
        self.config = config
        sizes = [config.input_dim, *config.hidden, config.latent_dim]
        self.encoder = mlp(sizes)
        self.decoder = mlp(sizes[::-1])
        self.quantizer = ResidualQuantizer(levels=config.levels, codebook_size=config.codebook_size,
                                           dim=config.latent_dim)

    def forward(self, x: torch.Tensor) -> RQVAEOutput:
        z = self.encoder(x)
        q = self.quantizer(z)
        recon = self.decoder(q.quantized)
        recon_loss = (recon - x).pow(2).sum(1).mean()
        loss = recon_loss + q.codebook_loss + self.config.beta * q.commit_loss
        return RQVAEOutput(recon, q.codes, loss, recon_loss, q.codebook_loss, q.commit_loss, q.residuals, z)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.encoder(x)).codes

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes))


def save(model: RQVAE, folder: Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = asdict(model.config) | {"hidden": list(model.config.hidden), "architecture": "RQVAE"}
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))


def load(folder: Path, device: str = "cpu") -> RQVAE:
    """Rebuild a model from ``config.json`` and ``model.safetensors`` alone."""
    raw = json.loads((Path(folder) / CONFIG_FILE).read_text())
    raw.pop("architecture", None)
    known = {k: raw[k] for k in RQVAEConfig.__dataclass_fields__ if k in raw}
    config = RQVAEConfig(**(known | {"hidden": tuple(known.get("hidden", ()))}))
    model = RQVAE(config)
    model.load_state_dict(load_file(str(Path(folder) / WEIGHTS_FILE), device=device))
    return model.eval()
