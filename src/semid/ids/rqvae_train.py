"""Training loop of the RQ-VAE (TIGER recipe, sized for a CPU by default).

Plain PyTorch: the model is a small MLP and the data fits in memory, so a Lightning trainer
would add nothing but start-up time. The loop adds the two remedies against codebook collapse
that reproductions need (see docs/semantic_ids.md):

* k-means initialisation of each level's codebook on the encoded residuals of a sample
  (TIGER: "codebooks initialised by k-means on the first batch");
* dead-code reset: a code chosen by no item over ``reset_every`` steps is moved onto a random
  residual of the current batch (Singh et al., 2024 reset dead codes at every step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from semid.core.artifacts import read_with
from semid.core.log import log, progress
from semid.ids import rqkmeans, rqvae
from semid.ids.codec import Codec
from semid.ids.rqvae import RQVAE, RQVAEConfig, RQVAEOutput

CHUNK = 65536  # items per forward pass when assigning

if TYPE_CHECKING:
    from semid.ids.config import IdsConfig


def make_optimizer(params, cfg: IdsConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)


@torch.no_grad()
def kmeans_init(model: RQVAE, x: torch.Tensor, cfg: IdsConfig, gen: torch.Generator) -> None:
    """Set each level's codebook to the k-means centroids of that level's residuals."""
    sample = x[torch.randperm(len(x), generator=gen)[: cfg.kmeans_init_sample]]
    residual = model.encoder(sample).numpy()
    for level in range(cfg.levels):
        book = rqkmeans.kmeans(residual, cfg.codebook_size, seed=cfg.seed + level, niter=cfg.kmeans_iters)
        model.quantizer.codebooks.data[level] = torch.from_numpy(book)
        residual = residual - book[rqkmeans.nearest(residual, book)]


@torch.no_grad()
def reset_dead_codes(model: RQVAE, usage: torch.Tensor, residuals: torch.Tensor, opt: torch.optim.Optimizer,
                     gen: torch.Generator) -> int:
    """Move unused codes onto random residuals of the batch; returns how many were reset."""
    books = model.quantizer.codebooks
    state = opt.state.get(books, {})
    total = 0
    for level in range(books.shape[0]):
        dead = torch.nonzero(usage[level] == 0).flatten()
        if len(dead) == 0:
            continue
        pick = torch.randint(0, residuals.shape[1], (len(dead),), generator=gen)
        books.data[level, dead] = residuals[level, pick]
        for value in state.values():  # stale optimizer moments would drag the new codes back
            if torch.is_tensor(value) and value.shape == books.shape:
                value[level, dead] = 0
        total += len(dead)
    return total


# extra(model, batch item indices, output) -> (a loss added to the RQ-VAE's, its terms for the curve)
ExtraLoss = Callable[[RQVAE, torch.Tensor, RQVAEOutput, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def train_rqvae(x: np.ndarray, cfg: IdsConfig, *, extra: ExtraLoss | None = None, extra_params: list | None = None,
                method: str = "rqvae") -> tuple[RQVAE, list[dict[str, Any]]]:
    """Train an RQ-VAE on ``x`` [N, d]; returns the model (eval mode) and the training curve.
    ``extra`` adds a loss term (``extra_params``: its own trainable parameters), as ``rqvae_cf`` does."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    model = RQVAE(RQVAEConfig(input_dim=data.shape[1], hidden=tuple(cfg.hidden), latent_dim=cfg.latent_dim,
                              levels=cfg.levels, codebook_size=cfg.codebook_size, beta=cfg.beta,
                              extra={"method": method, "seed": cfg.seed}))
    if cfg.kmeans_init:
        kmeans_init(model, data, cfg, gen)
    opt = make_optimizer([*model.parameters(), *(extra_params or [])], cfg)
    usage = torch.zeros(cfg.levels, cfg.codebook_size)
    stop_reset = int(cfg.reset_until * cfg.steps)
    batch = min(cfg.batch_size, len(data))
    perm, pos = torch.randperm(len(data), generator=gen), 0
    curve: list[dict[str, Any]] = []
    sums = np.zeros(4)
    extra_sums: dict[str, float] = {}
    resets, seen = 0, 0
    model.train()
    t0 = time.perf_counter()
    for step in progress(range(1, cfg.steps + 1), desc="rq-vae", total=cfg.steps, unit="step"):
        if pos + batch > len(data):
            perm, pos = torch.randperm(len(data), generator=gen), 0
        idx = perm[pos:pos + batch]
        pos += batch
        out = model(data[idx])
        loss = out.loss
        if extra is not None:
            added, terms = extra(model, idx, out, out.latent)
            loss = loss + added
            for k, v in terms.items():
                extra_sums[k] = extra_sums.get(k, 0.0) + v
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for level in range(cfg.levels):
            usage[level] += torch.bincount(out.codes[:, level], minlength=cfg.codebook_size)
        sums += [out.loss.item(), out.recon_loss.item(), out.codebook_loss.item(), out.commit_loss.item()]
        seen += 1
        if step % cfg.reset_every == 0:
            used = (usage > 0).float().mean(1)
            if cfg.dead_code_reset and step <= stop_reset:
                resets += reset_dead_codes(model, usage, out.residuals, opt, gen)
            usage.zero_()
        else:
            used = None
        if step % cfg.log_every == 0 or step == cfg.steps:
            mean = sums / max(seen, 1)
            point = {"step": step, "loss": mean[0], "recon": mean[1], "codebook": mean[2], "commit": mean[3],
                     **{k: v / max(seen, 1) for k, v in extra_sums.items()},
                     "codes_reset": resets, "seconds": round(time.perf_counter() - t0, 2)}
            extra_sums = {}
            if used is not None:
                point |= {f"used_l{level + 1}": float(used[level]) for level in range(cfg.levels)}
            curve.append(point)
            sums[:], seen = 0, 0
    log.info("%s: %d steps in %.1f s, %d dead codes reset", method, cfg.steps, time.perf_counter() - t0, resets)
    return model.eval(), curve


class RQVAECodec(Codec):
    """Codes from the RQ-VAE's encoder and residual quantizer; the codebooks live in its latent space."""

    model: RQVAE | None = None

    @classmethod
    def of(cls, model: RQVAE) -> RQVAECodec:
        c = model.config
        codec = cls(str(c.extra.get("method", "rqvae")), c.input_dim, c.levels, c.codebook_size, int(c.extra.get("seed", 0)),
                    model.quantizer.codebooks.detach().numpy().copy())
        codec.model = model
        return codec

    def _chunks(self, fn, data: np.ndarray, out: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            for s in range(0, len(data), CHUNK):
                out[s:s + CHUNK] = fn(torch.from_numpy(data[s:s + CHUNK])).numpy()
        return out

    def assign(self, x: np.ndarray) -> np.ndarray:
        return self._chunks(self.model.codes, x, np.empty((len(x), self.levels), dtype=np.int64))

    def latent(self, x: np.ndarray) -> np.ndarray:
        return self._chunks(self.model.encoder, x, np.empty((len(x), self.codebooks.shape[-1]), dtype=np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self._chunks(self.model.decode_codes, np.ascontiguousarray(codes),
                            np.empty((len(codes), self.input_dim), dtype=np.float32))

    def save_model(self, folder) -> None:
        rqvae.save(self.model, folder)  # config.json + model.safetensors

    @classmethod
    def load(cls, folder, raw: dict[str, Any]) -> RQVAECodec:
        return cls.of(read_with(folder, rqvae.load))


def fit(x: np.ndarray, cfg: IdsConfig, **_: Any) -> tuple[Codec, np.ndarray, list[dict[str, Any]]]:
    model, curve = train_rqvae(x, cfg)
    codec = RQVAECodec.of(model)
    return codec, codec.codes(x), curve
