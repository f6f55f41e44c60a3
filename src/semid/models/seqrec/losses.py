"""Training losses of SASRec, GRU4Rec and BERT4Rec.

- ``ce``: softmax cross-entropy over the whole catalogue at every position with a target (BERT4Rec's
  cloze loss is the same at the masked positions). Its ``[targets × items]`` logits grow with the
  catalogue, and at a few hundred thousand items they are most of a step's time and memory.
- **sampled softmax** (``negatives=N``): the target against ``N`` negatives shared by the whole
  batch, drawn with replacement by :class:`ItemSampler` (uniformly, or by training popularity),
  each logit corrected by the log of its expected count in the draw (the logQ correction of
  Bengio & Senécal 2008 and Yi et al. 2019) and a negative that is the row's own target removed
  ("accidental hit"). Cost ``[targets × N]`` whatever the catalogue size (docs/scaling.md states the
  crossover measured by ``benchmarks/bench_softmax.py``).
- ``bce`` (SASRec's paper): binary cross-entropy of the target against one negative per position,
  drawn uniformly from the items other than the target (:func:`sample_negatives`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semid.models.seqrec.model import scores
from semid.sequences import IGNORE

POPULARITY_POWER = 0.75  # the word2vec unigram power: popular items drawn less than in proportion


def sample_negatives(target: torch.Tensor, n_items: int) -> torch.Tensor:
    """One negative per target, uniform over the ``n_items - 1`` items other than the target.

    The target shifted by a random offset in ``[1, n_items - 1]`` modulo ``n_items``: never the
    target itself, never padding (ids are the 0-based item ids of ``item_weights()``), one
    ``randint`` call on the global torch generator (seeded, and saved in checkpoints).
    """
    if n_items < 2:
        raise ValueError(f"the BCE loss needs at least 2 items to draw a negative from, got {n_items}")
    offset = torch.randint(1, n_items, target.shape, device=target.device)
    return (target + offset) % n_items


class ItemSampler(nn.Module):
    """Draws a batch's shared negatives: ``num`` item ids with replacement, uniformly or with
    probability ∝ (training count + 1)^0.75, and gives every item's log expected count in a draw.

    Its buffers are derived from the training data, so they stay out of checkpoints and weights;
    draws use the global torch generator (seeded, and saved in checkpoints).
    """

    def __init__(self, n_items: int, num: int, counts: np.ndarray | None = None):
        super().__init__()
        if num < 1 or n_items < 2:
            raise ValueError(f"a sampled softmax needs at least 1 negative and 2 items, got {num} and {n_items}")
        self.n_items, self.num = n_items, num
        if counts is None:
            q = torch.full((n_items,), 1.0 / n_items, dtype=torch.float64)
        else:
            if len(counts) != n_items:
                raise ValueError(f"popularity counts for {len(counts)} items, the catalogue has {n_items}")
            q = torch.as_tensor(np.asarray(counts, dtype=np.float64) + 1.0) ** POPULARITY_POWER
            q /= q.sum()
        self.uniform = counts is None
        self.register_buffer("cdf", torch.cumsum(q, 0), persistent=False)  # float64: exact at 10M items
        self.register_buffer("log_expected", torch.log(q * num).float(), persistent=False)

    def draw(self) -> torch.Tensor:
        if self.uniform:
            return torch.randint(0, self.n_items, (self.num,), device=self.cdf.device)
        u = torch.rand(self.num, device=self.cdf.device, dtype=torch.float64) * self.cdf[-1]
        return torch.searchsorted(self.cdf, u).clamp_(max=self.n_items - 1)


def sampled_softmax(h: torch.Tensor, target: torch.Tensor, model: nn.Module, sampler: ItemSampler) -> torch.Tensor:
    """Mean sampled-softmax cross-entropy of hidden states ``h [T, d]`` with targets ``target [T]``."""
    neg = sampler.draw()
    w, bias = model.item_weights(), model.item_bias()
    pos_logit = (h * w[target].to(h.dtype)).sum(-1, keepdim=True)
    neg_logit = h @ w[neg].to(h.dtype).T
    if bias is not None:
        pos_logit = pos_logit + bias[target].unsqueeze(1).to(h.dtype)
        neg_logit = neg_logit + bias[neg].to(h.dtype)
    neg_logit = (neg_logit.float() - sampler.log_expected[neg]).masked_fill(neg.unsqueeze(0) == target.unsqueeze(1),
                                                                           float("-inf"))  # accidental hits
    logits = torch.cat([pos_logit.float() - sampler.log_expected[target].unsqueeze(1), neg_logit], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(target))


def sequence_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str,
                  sampler: ItemSampler | None = None) -> torch.Tensor:
    """Mean loss over the positions of ``y`` that hold a target (``sampler``: sampled softmax)."""
    h = model(x)
    keep = y != IGNORE
    h, target = h[keep], y[keep]
    if loss == "bce":
        w = model.item_weights()
        neg = sample_negatives(target, w.shape[0])
        pos_logit = (h * w[target]).sum(-1)
        neg_logit = (h * w[neg]).sum(-1)
        return (F.binary_cross_entropy_with_logits(pos_logit.float(), torch.ones_like(pos_logit, dtype=torch.float))
                + F.binary_cross_entropy_with_logits(neg_logit.float(), torch.zeros_like(neg_logit, dtype=torch.float)))
    if sampler is not None:
        return sampled_softmax(h, target, model, sampler)
    return F.cross_entropy(scores(model, h).float(), target)
