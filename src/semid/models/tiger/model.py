"""TIGER: an encoder-decoder transformer that generates the next item's Semantic ID.

Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023. The encoder reads
the history as Semantic-ID tokens (4 per item: 3 codes + the dedup code); the decoder emits the
next item's ID one token at a time, each position restricted to its level's token range.

One design choice differs from the paper, on purpose: the encoder may be **block-causal**
(``encoder_mask="causal"``): a token of history item ``j`` attends to the tokens of items
``0..j`` only. Then one encoder pass over a user's sequence yields, for every prefix, exactly the
states that encoding that prefix alone would give, so training on all sliding windows costs one
encoder pass per sequence instead of one per window. The decoder runs once per target, its
cross-attention masked to the items before that target. ``encoder_mask="bidirectional"`` is the
paper's encoder (every window is then encoded on its own).

Positions: ``positions="absolute"`` adds a learned embedding per encoder token position;
``positions="relative"`` is T5-like (T5 has no absolute positions): each encoder head adds a
learned bias by *item* distance to its attention logits, and a token only carries an embedding
of its ID level. ``recency_bias`` does the same for the decoder's cross-attention (distance from
the target). Both biases start ALiBi-like (:func:`alibi`), so some heads favour recent items
from the first step.

Encoder input: ``encoder_input="tokens"`` (the paper) reads every ID token of the history, T per
item; ``"items"`` reads one vector per history item, the sum of its tokens' embeddings (as SID-GRU
does), so the encoder and the decoder's cross-attention see ``T`` times fewer positions. Either
way the decoder generates the next item's ID token by token.

Shapes: ``B`` rows, ``S`` encoder tokens (``S / T`` items with ``encoder_input="items"``), ``M``
targets per row, ``T`` = ID length (L + 1).
This file holds the model only; training lives in :mod:`semid.models.tiger.train`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from semid.generative.tokens import BOS, PAD


@dataclass
class ModelArgs:
    vocab_size: int
    id_length: int  # T: tokens per item (L codes + dedup)
    level_ranges: list[tuple[int, int]]  # [start, end) of each position's tokens
    d_model: int = 128
    n_heads: int = 6
    head_dim: int = 64
    d_ff: int = 1024
    encoder_layers: int = 4
    decoder_layers: int = 4
    dropout: float = 0.1
    attn_dropout: float = 0.1  # on attention weights (T5 style); costly on CPU
    max_items: int = 20  # history length in items
    encoder_mask: Literal["causal", "bidirectional"] = "causal"
    user_buckets: int = 0  # hashed user tokens prepended to the history (0 = off)
    recency_bias: bool = False  # learned per-head cross-attention bias by distance from the target
    # encoder positions: "absolute" = a learned embedding per token position; "relative" (T5-like) =
    # a learned per-head self-attention bias by item distance, plus an embedding of the token's ID level
    positions: Literal["absolute", "relative"] = "absolute"
    # "tokens": one encoder position per ID token; "items": one per history item (sum of its token embeddings)
    encoder_input: Literal["tokens", "items"] = "tokens"

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        inner = a.n_heads * a.head_dim
        self.h, self.dh = a.n_heads, a.head_dim
        self.q = nn.Linear(a.d_model, inner, bias=False)
        self.kv = nn.Linear(a.d_model, 2 * inner, bias=False)
        self.out = nn.Linear(inner, a.d_model, bias=False)
        self.dropout = a.attn_dropout

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, Q, d] attends to ctx [B, K, d]; mask [B|1, 1|h, Q|1, K]: bool (True = may attend)
        or float (added to the attention logits, -inf = may not attend)."""
        return self.attend(x, *self.keys(ctx), mask)

    def keys(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx [..., K, d] → keys and values [..., h, K, dh] (what a decoding cache keeps)."""
        k, v = self.kv(ctx).unflatten(-1, (2, self.h, self.dh)).movedim(-3, 0).unbind(0)
        return k.transpose(-3, -2), v.transpose(-3, -2)

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [..., Q, d] attends to keys and values [..., h, K, dh] → [..., Q, d]."""
        q = self.q(x).unflatten(-1, (self.h, self.dh)).transpose(-3, -2)
        if mask is not None and mask.is_floating_point() and mask.dtype != q.dtype:  # under autocast q may be bf16/fp16
            mask = mask.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(-3, -2).flatten(-2))


class MLP(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(a.d_model, a.d_ff), nn.GELU(), nn.Dropout(a.dropout),
                                 nn.Linear(a.d_ff, a.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderLayer(nn.Module):
    """Pre-norm: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, a: ModelArgs):
        super().__init__()
        self.n1, self.attn, self.n2, self.mlp = nn.LayerNorm(a.d_model), Attention(a), nn.LayerNorm(a.d_model), MLP(a)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.drop(self.attn(h, h, mask))
        return x + self.drop(self.mlp(self.n2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.n1, self.self_attn = nn.LayerNorm(a.d_model), Attention(a)
        self.n2, self.cross = nn.LayerNorm(a.d_model), Attention(a)
        self.n3, self.mlp = nn.LayerNorm(a.d_model), MLP(a)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x, memory, self_mask, cross_mask):
        h = self.n1(x)
        x = x + self.drop(self.self_attn(h, h, self_mask))
        x = x + self.drop(self.cross(self.n2(x), memory, cross_mask))
        return x + self.drop(self.mlp(self.n3(x)))


def alibi(heads: int, width: int, centre: int = 0) -> torch.Tensor:
    """Initial attention bias [heads, width] by distance ``|i - centre|``: head ``h`` falls off with
    slope ``4**-h`` (ALiBi-like), so from the first step some heads favour the nearest items and
    others look far; the biases are learned from there."""
    slope = 4.0 ** -torch.arange(heads, dtype=torch.float32)
    return -slope[:, None] * (torch.arange(width) - centre).abs().float()[None]


def biased_mask(table: torch.Tensor, dist: torch.Tensor, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask [B, h, Q, K]: the learned bias ``table[h, dist]`` (dist [B, Q, K]
    indexes the table's distance buckets) where ``allowed`` [B, 1, Q, K], -inf elsewhere."""
    return table[:, dist].permute(1, 0, 2, 3).to(dtype).masked_fill(~allowed, float("-inf"))


class Tiger(nn.Module):
    """Encoder-decoder over Semantic-ID tokens with tied input/output embeddings."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = a = args
        self.tok = nn.Embedding(a.vocab_size, a.d_model, padding_idx=PAD)
        relative = a.positions == "relative"
        # absolute: one embedding per encoder position; relative: one per ID level, so none for item
        # inputs, which have no level (a table without gradients would be refused by DDP)
        if a.encoder_input == "items":
            rows = 0 if relative else a.max_items
        else:
            rows = a.id_length if relative else a.max_items * a.id_length + 1
        self.enc_pos = nn.Embedding(rows, a.d_model) if rows else None
        self.dec_pos = nn.Embedding(a.id_length, a.d_model)
        self.user = nn.Embedding(a.user_buckets, a.d_model) if a.user_buckets else None
        # distance 0 = the item just before the target; a.max_items = the user token / farther
        self.recency = nn.Parameter(alibi(a.n_heads, a.max_items + 1)) if a.recency_bias else None
        # encoder: bias by signed item distance (key - query), clamped to ±max_items; index max_items = same item
        self.item_bias = nn.Parameter(alibi(a.n_heads, 2 * a.max_items + 1, centre=a.max_items)) if relative else None
        self.encoder = nn.ModuleList(EncoderLayer(a) for _ in range(a.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(a) for _ in range(a.decoder_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(a.d_model), nn.LayerNorm(a.d_model)
        self.drop = nn.Dropout(a.dropout)
        allowed = torch.zeros(a.id_length, a.vocab_size, dtype=torch.bool)
        for lvl, (lo, hi) in enumerate(a.level_ranges):
            allowed[lvl, lo:hi] = True
        # additive logit bias that keeps each decoder position inside its level's token range
        self.register_buffer("level_bias", torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf")),
                             persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    # ---- encoder -----------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, users: torch.Tensor | None = None):
        """tokens [B, S] (history items' tokens, item-aligned, PAD after the end) →
        (memory [B, S', d], memory item index [B, S'], key padding [B, S']).

        A token's item index is ``position // T`` (with ``encoder_input="items"`` the memory holds
        one position per item, its index); a user token (if any) gets index -1 so that every
        target sees it.
        """
        a = self.args
        b, s = tokens.shape
        if a.encoder_input == "items":  # one position per item: the sum of its tokens' embeddings
            per_item = tokens.view(b, s // a.id_length, a.id_length)
            pos = torch.arange(per_item.shape[1], device=tokens.device)
            x = self.tok(per_item).sum(2)
            if self.enc_pos is not None:  # absolute positions (relative ones need none: an item has no ID level)
                x = x + self.enc_pos(pos)[None]
            item, pad = pos[None].expand(b, -1), per_item[..., 0] == PAD
        else:
            pos = torch.arange(s, device=tokens.device)
            x = self.tok(tokens) + self.enc_pos(pos % a.id_length if self.item_bias is not None else pos)[None]
            item, pad = (pos // a.id_length)[None].expand(b, s), tokens == PAD
        if self.user is not None:
            ux = self.user(users if users is not None else torch.zeros(b, dtype=torch.long, device=tokens.device))
            x = torch.cat([ux[:, None], x], 1)
            item = torch.cat([torch.full((b, 1), -1, device=tokens.device), item], 1)
            pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=tokens.device), pad], 1)
        keep = ~pad[:, None, None, :]
        if a.encoder_mask == "causal":
            mask = keep & (item[:, None, None, :] <= item[:, None, :, None])
        else:
            mask = keep.expand(b, 1, x.shape[1], x.shape[1])
        if self.item_bias is not None:
            # a user token (item -1) is treated as the farthest item, whichever way
            far = item < 0
            dist = (item[:, None, :] - item[:, :, None]).clamp(-a.max_items, a.max_items)
            dist = dist.masked_fill(far[:, None, :] | far[:, :, None], -a.max_items)
            mask = biased_mask(self.item_bias, dist + a.max_items, mask, x.dtype)
        x = self.drop(x)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_norm(x), item, pad

    # ---- decoder -----------------------------------------------------------------------------
    def decode(self, dec_in: torch.Tensor, limit: torch.Tensor, memory: torch.Tensor,
               mem_item: torch.Tensor, mem_pad: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """dec_in [B, M, t] (BOS then ID tokens; M independent blocks per row), limit [B, M]
        (block m may read memory items ``< limit``), or [B, 1] when every block has the same limit
        (the beams of one user: the cross-attention mask is then built once and broadcast)
        → logits [B, M, t, V] (level-masked); [B, M, 1, V] for each block's last position with
        ``last_only`` (decoding needs no more).

        The M blocks share one pass: self-attention is causal inside a block and blind across
        blocks, so each block is decoded as if it were alone.
        """
        b, m, t = dec_in.shape
        dev = dec_in.device
        x = self.tok(dec_in) + self.dec_pos(torch.arange(t, device=dev))[None, None]
        x = self.drop(x.reshape(b, m * t, -1))
        block = torch.arange(m, device=dev).repeat_interleave(t)
        step = torch.arange(t, device=dev).repeat(m)
        self_mask = ((block[:, None] == block[None, :]) & (step[None, :] <= step[:, None]))[None, None]
        q_limit = limit if limit.shape[1] == 1 else limit.repeat_interleave(t, dim=1)  # [B, M*t | 1]
        cross_mask = self.cross_mask(q_limit, mem_item, mem_pad, memory.dtype)
        for layer in self.decoder:
            x = layer(x, memory, self_mask, cross_mask)
        if last_only:
            x, levels = x.view(b, m, t, -1)[:, :, -1:], self.level_bias[t - 1:t]
        else:
            levels = self.level_bias[:t]
        logits = self.dec_norm(x) @ self.tok.weight.T
        return logits.view(b, m, levels.shape[0], -1) + levels

    def cross_mask(self, q_limit: torch.Tensor, mem_item: torch.Tensor, mem_pad: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Which memory tokens each query may read (items ``< q_limit`` [B, Q], not padding), with the
        recency bias where the model has one: [B, 1|h, Q, S']."""
        mask = ((mem_item[:, None, :] < q_limit[:, :, None]) & ~mem_pad[:, None, :])[:, None]
        if self.recency is None:
            return mask
        # recency: how many items back from the target a memory token is
        dist = (q_limit[:, :, None] - 1 - mem_item[:, None, :]).clamp(0, self.args.max_items)
        dist = dist.masked_fill(mem_item[:, None, :] < 0, self.args.max_items)
        return biased_mask(self.recency, dist, mask, dtype)

    def forward(self, enc_tokens, dec_in, limit, users=None):
        memory, item, pad = self.encode(enc_tokens, users)
        return self.decode(dec_in, limit, memory, item, pad)

    # ---- generation --------------------------------------------------------------------------
    def start(self, history_tokens: torch.Tensor, users: torch.Tensor | None = None) -> StepState:
        """Encode a batch of histories for :func:`semid.generative.beam.beam_search`."""
        memory, item, pad = self.encode(history_tokens, users)
        limit = (item.masked_fill(pad, -1).amax(1) + 1)  # every history item is visible
        return StepState(self, memory, item, pad, limit)


class StepState:
    """A model's decoding state: ``step(prefix)`` gives next-token log-probs for every beam.

    Decoding is incremental: each decoder layer's self-attention keys and values of the positions
    decoded so far are kept (and the cross-attention keys and values of the history, computed
    once), so a step runs the decoder on the new token only. :func:`~semid.generative.beam.beam_search`
    calls :meth:`follow` with each new beam's parent; a caller that does not (a step wrapped in a
    function) gets the full recomputation, with the same result.
    """

    def __init__(self, model: Tiger, memory, item, pad, limit):
        self.model, self.memory, self.item, self.pad, self.limit = model, memory, item, pad, limit
        self._cross: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer [B, h, S', dh]
        self._mask: torch.Tensor | None = None  # the cross-attention mask [B, h|1, 1, S'], built with _cross
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer [B, nb, h, t, dh]
        self._ready = False  # the cache's beams are the next call's parents (follow was called)

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        """prefix [B, nb, t] ID tokens so far → log-probs [B, nb, V] of token t (-inf off-level)."""
        b, nb, t = prefix.shape
        if self.model.training or not (t == 0 or (self._ready and self._cache and self._cache[0][0].shape[-2] == t)):
            self._cache, self._ready = [], False
            bos = torch.full((b, nb, 1), BOS, dtype=prefix.dtype, device=prefix.device)
            logits = self.model.decode(torch.cat([bos, prefix], 2), self.limit[:, None], self.memory, self.item, self.pad,
                                       last_only=True)[:, :, -1]
            return torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), -1)
        last = prefix[:, :, -1] if t else torch.full((b, nb), BOS, dtype=prefix.dtype, device=prefix.device)
        return self._next(last, t)

    def follow(self, parents: torch.Tensor) -> None:
        """The beams just chosen continue the beams ``parents`` [B, nb] of the last call."""
        if self._cache:
            b, nb_old = self._cache[0][0].shape[:2]
            rows = (parents + nb_old * torch.arange(b, device=parents.device)[:, None]).view(-1)
            self._cache = [tuple(c.flatten(0, 1).index_select(0, rows).unflatten(0, parents.shape) for c in kv)
                           for kv in self._cache]
            self._ready = True

    def _next(self, token: torch.Tensor, t: int) -> torch.Tensor:
        """Log-probs [B, nb, V] of the position after ``token`` [B, nb] (position ``t`` of each
        block): only the level's tokens are scored, the others are -inf (as the level bias makes them)."""
        m = self.model
        if self._cross is None:
            self._cross = [layer.cross.keys(self.memory) for layer in m.decoder]
            self._mask = m.cross_mask(self.limit[:, None], self.item, self.pad, self.memory.dtype)  # [B, h|1, 1, S']
        x = m.tok(token) + m.dec_pos.weight[t]
        cache = []
        for i, layer in enumerate(m.decoder):
            h = layer.n1(x)[:, :, None]
            k, v = layer.self_attn.keys(h)  # [B, nb, h, 1, dh]
            if t:
                k, v = torch.cat([self._cache[i][0], k], -2), torch.cat([self._cache[i][1], v], -2)
            cache.append((k, v))
            x = x + layer.self_attn.attend(h, k, v, None)[:, :, 0]
            x = x + layer.cross.attend(layer.n2(x), *self._cross[i], self._mask)
            x = x + layer.mlp(layer.n3(x))
        self._cache, self._ready = cache, False
        lo, hi = m.args.level_ranges[t]
        logits = m.dec_norm(x) @ m.tok.weight[lo:hi].T
        out = logits.new_full((*logits.shape[:2], m.args.vocab_size), float("-inf"),
                              dtype=logits.dtype if logits.dtype == torch.float64 else torch.float32)
        out[..., lo:hi] = torch.log_softmax(logits.to(out.dtype), -1)
        return out

    def select(self, rows: torch.Tensor) -> StepState:
        return StepState(self.model, self.memory[rows], self.item[rows], self.pad[rows], self.limit[rows])
