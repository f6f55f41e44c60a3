"""Item-ID sequential recommenders (``nn.Module`` only; training lives in :mod:`semid.models.seqrec.train`).

Inputs are item ids shifted by one: 0 is padding (right-padded rows), ``n_items + 1`` is
BERT4Rec's mask token. Every model maps ``x [B, L]`` to hidden states ``[B, L, d]``; the score of
item ``i`` at a position is ``h · W[i] (+ b[i])`` with ``W = item_weights()`` (the input item
embeddings: output tied to input as in the three papers), so one matmul scores the catalogue.

- :class:`SASRec` (Kang & McAuley, ICDM 2018): learned positions, pre-LayerNorm causal
  self-attention blocks with a two-layer ReLU feed-forward of width ``d``, a final LayerNorm.
- :class:`GRU4Rec` (Hidasi et al., ICLR 2016): item embedding → GRU.
- :class:`BERT4Rec` (Sun et al., CIKM 2019): bidirectional post-LayerNorm GELU transformer,
  a projection head (Linear, GELU, LayerNorm) and an output bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

SCORE_CHUNK = 1 << 18  # items scored at a time when ranking a larger catalogue


@dataclass
class ModelArgs:
    n_items: int
    d_model: int = 64
    layers: int = 2
    heads: int = 1
    dropout: float = 0.2
    max_len: int = 50

    def to_dict(self) -> dict:
        return asdict(self)


class CausalBlock(nn.Module):
    """SASRec block: x + Attn(LN(x)), then x + FFN(LN(x)); position t sees positions ≤ t."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} does not divide into {heads} heads")
        self.heads, self.p = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SASRec(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.item = nn.Embedding(a.n_items + 1, a.d_model, padding_idx=0)
        self.pos = nn.Embedding(a.max_len, a.d_model)
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList(CausalBlock(a.d_model, a.heads, a.dropout) for _ in range(a.layers))
        self.ln = nn.LayerNorm(a.d_model)
        nn.init.normal_(self.item.weight, std=a.d_model ** -0.5)
        nn.init.normal_(self.pos.weight, std=a.d_model ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.item(x) * self.args.d_model ** 0.5 + self.pos(pos))
        h = h * (x > 0).unsqueeze(-1)
        for block in self.blocks:
            h = block(h)
        return self.ln(h)

    def item_weights(self) -> torch.Tensor:
        return self.item.weight[1:]

    def item_bias(self) -> torch.Tensor | None:
        return None


class GRU4Rec(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.item = nn.Embedding(a.n_items + 1, a.d_model, padding_idx=0)
        self.drop = nn.Dropout(a.dropout)
        self.gru = nn.GRU(a.d_model, a.d_model, num_layers=a.layers, batch_first=True,
                          dropout=a.dropout if a.layers > 1 else 0.0)
        nn.init.normal_(self.item.weight, std=a.d_model ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.drop(self.item(x)))
        return self.drop(h)

    def item_weights(self) -> torch.Tensor:
        return self.item.weight[1:]

    def item_bias(self) -> torch.Tensor | None:
        return None


class BERT4Rec(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.args = a
        self.item = nn.Embedding(a.n_items + 2, a.d_model, padding_idx=0)
        self.pos = nn.Embedding(a.max_len, a.d_model)
        self.ln = nn.LayerNorm(a.d_model)
        self.drop = nn.Dropout(a.dropout)
        layer = nn.TransformerEncoderLayer(a.d_model, a.heads, 4 * a.d_model, a.dropout, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(a.d_model, a.d_model), nn.GELU(), nn.LayerNorm(a.d_model))
        self.bias = nn.Parameter(torch.zeros(a.n_items))
        nn.init.trunc_normal_(self.item.weight, std=0.02)
        nn.init.trunc_normal_(self.pos.weight, std=0.02)

    @property
    def mask_token(self) -> int:
        return self.args.n_items + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.ln(self.item(x) + self.pos(pos)))
        h = self.encoder(h, src_key_padding_mask=x == 0)
        return self.head(h)

    def item_weights(self) -> torch.Tensor:
        return self.item.weight[1:-1]

    def item_bias(self) -> torch.Tensor | None:
        return self.bias


def model_args(args: dict) -> ModelArgs:
    """``ModelArgs`` from a ``config.json``'s ``args`` (folders written before 0.2 also name the kind there)."""
    return ModelArgs(**{k: v for k, v in args.items() if k != "kind"})


def scores(model: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Scores of every item for hidden states ``h [..., d]`` → ``[..., n_items]``."""
    out = h @ model.item_weights().to(h.dtype).T
    bias = model.item_bias()
    return out if bias is None else out + bias.to(out.dtype)


def top_items(model: nn.Module, h: torch.Tensor, k: int, chunk: int = SCORE_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, items)`` of the ``k`` best items for hidden states ``h [B, d]``, scoring at most
    ``chunk`` items at a time (memory ``B × chunk`` whatever the catalogue size)."""
    w, bias = model.item_weights(), model.item_bias()
    n = w.shape[0]
    k = min(k, n)
    if n <= chunk:
        return torch.topk(scores(model, h).float(), k, dim=1)
    best_v = best_i = None
    for a in range(0, n, chunk):
        s = (h @ w[a:a + chunk].to(h.dtype).T).float()
        if bias is not None:
            s = s + bias[a:a + chunk].float()
        v, i = torch.topk(s, min(k, s.shape[1]), dim=1)
        i = i + a
        if best_v is not None:
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            v, pick = torch.topk(v, min(k, v.shape[1]), dim=1)
            i = torch.gather(i, 1, pick)
        best_v, best_i = v, i
    return best_v, best_i


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
