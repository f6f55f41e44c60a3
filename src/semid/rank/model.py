"""A DIN-style ranker: P(engage | history, candidate) with a pluggable item representation.

    e_c = item(candidate)                       [B, C, d]
    e_h = item(history)                         [B, H, d]   (padding id = n_items)
    a   = softmax_h((W_q e_c) · (W_k e_h) / √d) target attention of each candidate over the history
    u   = Σ_h a e_h,  m = mean_h e_h
    logit = MLP([e_c, u, e_c ⊙ u, m])           with history
    logit = MLP([e_c])                          ``history=False`` (the paper's no-history setting)

The same representation module embeds candidates and history items. The history is encoded
once per user and shared by all of that user's candidates.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Ranker(nn.Module):
    def __init__(self, item: nn.Module, *, dim: int, mlp: list[int], history: bool = True):
        super().__init__()
        self.item, self.dim, self.use_history = item, dim, history
        self.pad = item.n_items
        if history:
            self.query = nn.Linear(dim, dim, bias=False)
            self.key = nn.Linear(dim, dim, bias=False)
        width = 4 * dim if history else dim
        layers: list[nn.Module] = []
        for h in mlp:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    @property
    def rows(self) -> int:
        return int(self.item.rows)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] for ``history`` [B, H] (padded with ``n_items``) and ``candidates`` [B, C]."""
        c = self.item(candidates)
        if not self.use_history:
            return self.mlp(c).squeeze(-1)
        h = self.item(history)
        mask = history != self.pad  # [B, H]
        att = torch.einsum("bcd,bhd->bch", self.query(c), self.key(h)) / math.sqrt(self.dim)
        att = att.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.nan_to_num(torch.softmax(att, -1), nan=0.0)  # an empty history gives zeros
        u = torch.einsum("bch,bhd->bcd", weights, h)
        count = mask.sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1)
        m = (h * mask.unsqueeze(-1)).sum(1, keepdim=True) / count
        feats = torch.cat([c, u, c * u, m.expand_as(c)], -1)
        return self.mlp(feats).squeeze(-1)
