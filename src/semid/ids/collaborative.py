"""Semantic IDs that carry collaborative signal (LETTER-style, Wang et al., 2024): ``rqvae_cf``.

An RQ-VAE on the item-text embeddings whose loss gets two more terms:

* **collaborative alignment**: an InfoNCE loss that pulls each item's quantized latent (the sum
  of its codewords) towards its collaborative embedding (linearly projected) and away from the
  other items of the batch, so items bought in the same sessions share code prefixes more often;
* **code diversity**: per level, the KL divergence of the batch's soft code usage from uniform
  (soft assignment: a softmax over negative squared distances to the codewords), which keeps
  the alignment from crowding items into a few codes.

The collaborative embeddings come from the training sequences only (history + target of the
train rows, never a validation or test target): the positive PMI of items co-occurring within
``cf_window`` positions, factorised by a truncated SVD to ``cf_dim`` dimensions. Items without
any training co-occurrence (cold items) are left out of the alignment term. New items get IDs
from the text alone (the encoder and codebooks), as for ``rqvae``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import svds

from semid.core.log import log
from semid.ids import rqvae_train
from semid.ids.codec import Codec
from semid.ids.rqvae import RQVAE, RQVAEOutput

if TYPE_CHECKING:
    from semid.ids.config import IdsConfig


def cooccurrence(sequences: list[np.ndarray], n_items: int, window: int) -> sp.csr_matrix:
    """Symmetric counts of item pairs at most ``window`` positions apart in a sequence (an item
    with itself excluded)."""
    rows, cols = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for gap in range(1, min(window, len(seq) - 1) + 1):
            a, b = seq[:-gap], seq[gap:]
            keep = a != b
            rows += [a[keep], b[keep]]
            cols += [b[keep], a[keep]]
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_items, n_items))


def ppmi(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Positive pointwise mutual information of a symmetric count matrix."""
    counts = counts.tocoo()
    total = counts.sum()
    if total == 0:
        return counts.tocsr()
    row = np.asarray(counts.sum(1)).ravel()
    pmi = np.log(counts.data * total / (row[counts.row] * row[counts.col]))
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def cf_embeddings(sequences: list[np.ndarray], n_items: int, *, dim: int, window: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit-norm collaborative embeddings [N, dim], bool [N]: the item has any co-occurrence)."""
    m = ppmi(cooccurrence(sequences, n_items, window))
    has = np.asarray((m != 0).sum(1)).ravel() > 0
    k = min(dim, n_items - 1, max(int(has.sum()) - 1, 1))
    if has.sum() < 2:
        return np.zeros((n_items, dim), dtype=np.float32), has
    u, s, _ = svds(m.astype(np.float64), k=k, random_state=seed)
    emb = np.zeros((n_items, dim), dtype=np.float32)
    emb[:, :k] = (u * np.sqrt(s)).astype(np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.where(norm > 0, emb / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
    return emb, has & (norm.ravel() > 0)


def alignment_loss(quantized: torch.Tensor, cf: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between each item's quantized latent and its projected collaborative embedding,
    the batch's other items as negatives (both directions)."""
    q, c = F.normalize(quantized, dim=1), F.normalize(cf, dim=1)
    logits = q @ c.T / temperature
    target = torch.arange(len(q), device=q.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def diversity_loss(residuals: torch.Tensor, codebooks: torch.Tensor, temperature: float) -> torch.Tensor:
    """Σ over levels of KL(batch soft usage ‖ uniform) = log K − H(usage); 0 when codes are used evenly."""
    total = residuals.new_zeros(())
    for level in range(codebooks.shape[0]):
        r, book = residuals[level], codebooks[level]
        dist = r.pow(2).sum(1, keepdim=True) - 2 * r @ book.T + book.pow(2).sum(1)
        usage = torch.softmax(-dist / temperature, dim=1).mean(0)
        total = total + (usage * torch.log(usage.clamp_min(1e-12) * book.shape[0])).sum()
    return total


def fit(x: np.ndarray, cfg: IdsConfig, *, sequences: list[np.ndarray] | None = None, **_: Any
        ) -> tuple[Codec, np.ndarray, list[dict[str, Any]]]:
    if sequences is None:
        raise ValueError("rqvae_cf needs the run's training sequences (semid ids train passes them)")
    emb, has = cf_embeddings(sequences, len(x), dim=cfg.cf_dim, window=cfg.cf_window, seed=cfg.seed)
    log.info("rqvae_cf: collaborative embeddings of %d / %d items from %d training sequences (PPMI, window %d, SVD %d)",
             int(has.sum()), len(x), len(sequences), cfg.cf_window, cfg.cf_dim)
    cf, mask = torch.from_numpy(emb), torch.from_numpy(has)
    torch.manual_seed(cfg.seed)
    project = torch.nn.Linear(cfg.cf_dim, cfg.latent_dim, bias=False)

    def extra(model: RQVAE, idx: torch.Tensor, out: RQVAEOutput, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        sel = mask[idx]  # items of the batch with a collaborative embedding
        terms = {}
        loss = z.new_zeros(())
        if cfg.cf_weight > 0 and int(sel.sum()) > 1:
            quantized = model.quantizer.lookup(out.codes[sel]) + z[sel] - z[sel].detach()  # grads: codebooks and encoder
            align = alignment_loss(quantized, project(cf[idx[sel]]), cfg.cf_temperature)
            loss, terms["align"] = loss + cfg.cf_weight * align, align.item()
        if cfg.diversity_weight > 0:
            div = diversity_loss(out.residuals, model.quantizer.codebooks, cfg.cf_temperature)
            loss, terms["diversity"] = loss + cfg.diversity_weight * div, div.item()
        return loss, terms

    model, curve = rqvae_train.train_rqvae(x, cfg, extra=extra, extra_params=list(project.parameters()), method="rqvae_cf")
    codec = rqvae_train.RQVAECodec.of(model)
    return codec, codec.codes(x), curve


__all__ = ["fit", "cf_embeddings", "cooccurrence", "ppmi", "alignment_loss", "diversity_loss"]
