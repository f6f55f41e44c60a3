"""Semantic-ID-native sequential recommenders: SID-GRU and SID-BERT4Rec (models only).

Both read the history as Semantic-ID tokens (``T = L + 1`` per item, from
:class:`~semid.generative.tokens.SIDTokenizer`); an item's input vector is the **sum of its level-code
embeddings** (one table over the level-offset tokens, PAD = 0 gives a zero vector). An encoder
turns the history into a user state ``u``; the next item's ID is predicted by **one
classification head per codebook level**, the dedup level included. Head ``l`` is conditioned
on the codes chosen at levels ``< l``:

    q_l = u + sum_{j<l} P(c_j)            P: prefix-code embeddings
    z_l = norm_l(q_l + MLP_l(q_l))
    logits_l = z_l · E[level l codes]ᵀ + b   (tied) or  Linear_l(z_l)

so ``sum_l log p(c_l | u, c_<l)`` is an item's log-likelihood, training is teacher forcing on
the true prefix, and the project's trie-constrained beam search (one head per step) decodes it.

With ``members > 1`` a model is an ensemble (:class:`SIDEnsemble`) of that many networks of one
shape, trained one after another with their own seeds; beam search scores each next code by the
mean of the members' log-probabilities (a product of experts, renormalised by nobody, as the
single model's scores are not).

Shapes: ``B`` rows, ``n`` items per row, ``T`` tokens per item, ``d`` width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semid.generative.tokens import PAD
from semid.models.tiger.model import Tiger


@dataclass
class SIDArgs:
    vocab_size: int
    level_ranges: list[tuple[int, int]]  # [start, end) of each ID position's tokens (L codes + dedup)
    d_model: int = 128
    d_ff: int = 256
    dropout: float = 0.2
    tied: bool = True
    max_items: int = 20
    gru_layers: int = 1
    layers: int = 2
    n_heads: int = 2
    members: int = 1  # networks in an ensemble (SIDEnsemble); 1 = one network

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, args: dict) -> SIDArgs:
        """From a ``config.json``'s ``args`` (folders written before 0.2 also name the kind there)."""
        return cls(**{k: v for k, v in args.items() if k != "kind"} | {"level_ranges": [tuple(r) for r in args["level_ranges"]]})


class LevelHeads(nn.Module):
    """One head per ID position, each conditioned on the embeddings of the earlier codes."""

    def __init__(self, a: SIDArgs):
        super().__init__()
        self.ranges = [tuple(r) for r in a.level_ranges]
        # the code embeddings: items' input vectors, and the output weights when tied
        self.codes = nn.Embedding(a.vocab_size, a.d_model, padding_idx=PAD)
        self.prefix = nn.Embedding(a.vocab_size, a.d_model, padding_idx=PAD)
        self.mlp = nn.ModuleList(nn.Sequential(nn.LayerNorm(a.d_model), nn.Linear(a.d_model, a.d_ff), nn.GELU(),
                                               nn.Dropout(a.dropout), nn.Linear(a.d_ff, a.d_model))
                                 for _ in self.ranges)
        self.norm = nn.ModuleList(nn.LayerNorm(a.d_model) for _ in self.ranges)
        self.tied = a.tied
        if a.tied:
            self.bias = nn.Parameter(torch.zeros(a.vocab_size))
        else:
            self.out = nn.ModuleList(nn.Linear(a.d_model, hi - lo) for lo, hi in self.ranges)

    def level_logits(self, level: int, q: torch.Tensor) -> torch.Tensor:
        """q [..., d] (user state + prefix embeddings) → logits [..., W_level] over that level's codes."""
        z = self.norm[level](q + self.mlp[level](q))
        if self.tied:
            lo, hi = self.ranges[level]
            return z @ self.codes.weight[lo:hi].T + self.bias[lo:hi]
        return self.out[level](z)

    def forward(self, u: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """Teacher forcing: u [N, d], target tokens [N, T] → per-level logits, [N, W_l] each."""
        pe = self.prefix(target)  # [N, T, d]
        before = torch.cumsum(F.pad(pe[:, :-1], (0, 0, 1, 0)), 1)  # sum of the embeddings of earlier codes
        return [self.level_logits(lvl, u + before[:, lvl]) for lvl in range(len(self.ranges))]

    def nll(self, u: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(mean over rows of the summed per-level cross-entropy, per-level means); ``smoothing``: label
        smoothing over each level's codes."""
        per = [F.cross_entropy(lg.float(), target[:, lvl] - self.ranges[lvl][0], label_smoothing=smoothing)
               for lvl, lg in enumerate(self(u, target))]
        return torch.stack(per).sum(), per


def _init(m: nn.Module) -> None:
    """TIGER's initialisation, with the padding rows of embeddings zeroed."""
    Tiger._init(m)
    if isinstance(m, nn.Embedding) and m.padding_idx is not None:
        with torch.no_grad():
            m.weight[m.padding_idx].zero_()


class SIDRecModel(nn.Module):
    """Shared parts: code embeddings, item vectors, level heads, the decoding state."""

    def __init__(self, a: SIDArgs):
        super().__init__()
        self.args = a
        self.heads = LevelHeads(a)
        self.drop = nn.Dropout(a.dropout)

    def predict(self, tokens: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: (user states [N, d], the target tokens [N, T] they predict)."""
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What training calls (so that ``compile=true`` traces it): :meth:`predict`."""
        return self.predict(tokens, masked)

    def items(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, n, T] → item vectors [B, n, d] (sum of code embeddings; PAD items are 0)."""
        return self.heads.codes(tokens).sum(2)

    def start(self, tokens: torch.Tensor) -> StepState:
        """Encode a batch of histories (tokens [B, n, T], PAD after the end) for beam search;
        ``user`` (each model's own) maps them to one state per row."""
        return StepState(self.heads, self.user(tokens), self.args.vocab_size)


class SIDGRU(SIDRecModel):
    """GRU over the history's item vectors; the state after item ``t`` predicts item ``t + 1``."""

    def __init__(self, a: SIDArgs):
        super().__init__(a)
        self.gru = nn.GRU(a.d_model, a.d_model, a.gru_layers, batch_first=True,
                          dropout=a.dropout if a.gru_layers > 1 else 0.0)
        self.out_norm = nn.LayerNorm(a.d_model)
        self.apply(_init)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, n, T] (PAD after the end) → states [B, n, d]; position t has read items 0..t."""
        out, _ = self.gru(self.drop(self.items(tokens)))
        return self.drop(self.out_norm(out))

    def predict(self, tokens: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: (states [N, d], target tokens [N, T]); position t predicts item t + 1."""
        nxt = tokens[:, 1:]
        valid = nxt[..., 0] != PAD
        src = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        src[:, :-1] = valid
        return self.hidden(tokens)[src], nxt[valid]

    def user(self, tokens: torch.Tensor) -> torch.Tensor:
        last = ((tokens[..., 0] != PAD).sum(1) - 1).clamp(min=0)
        h = self.hidden(tokens)
        return h[torch.arange(len(h), device=h.device), last]


class SIDBert4Rec(SIDRecModel):
    """Bidirectional transformer over item vectors with [MASK] slots; positions count from the end.

    Rows are right-padded and a position's embedding is its distance from the row's last slot, so
    the output of a slot depends neither on the padding nor on where the row starts.
    """

    def __init__(self, a: SIDArgs):
        super().__init__(a)
        self.mask_vec = nn.Parameter(torch.zeros(a.d_model))
        self.pos = nn.Embedding(a.max_items + 1, a.d_model)
        self.in_norm = nn.LayerNorm(a.d_model)
        layer = nn.TransformerEncoderLayer(a.d_model, a.n_heads, a.d_ff, a.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(a.d_model)
        self.apply(_init)
        nn.init.normal_(self.mask_vec, std=0.02)

    def hidden(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """tokens [B, n, T], masked bool [B, n] (slots to predict; their tokens are ignored) → [B, n, d].

        A slot is real when it holds an item or is masked; real slots come first in each row.
        """
        real = (tokens[..., 0] != PAD) | masked
        x = torch.where(masked[..., None], self.mask_vec.to(self.heads.codes.weight.dtype), self.items(tokens))
        length = real.sum(1, keepdim=True)
        dist = (length - 1 - torch.arange(tokens.shape[1], device=tokens.device)[None]).clamp(0, self.args.max_items)
        x = self.drop(self.in_norm(x + self.pos(dist)))
        x = self.encoder(x, src_key_padding_mask=~real)
        return self.out_norm(x)

    def predict(self, tokens: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cloze: (states of the masked slots [N, d], their tokens [N, T])."""
        return self.hidden(tokens, masked)[masked], tokens[masked]

    def user(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, t = tokens.shape
        tokens = torch.cat([tokens, torch.full((b, 1, t), PAD, dtype=tokens.dtype, device=tokens.device)], 1)
        slot = (tokens[..., 0] != PAD).sum(1)  # the [MASK] goes right after the last history item
        rows = torch.arange(b, device=tokens.device)
        masked = torch.zeros(b, n + 1, dtype=torch.bool, device=tokens.device)
        masked[rows, slot] = True
        return self.hidden(tokens, masked)[rows, slot]


class StepState:
    """Decoding state for :func:`semid.generative.beam.beam_search`: a user state per row."""

    def __init__(self, heads: LevelHeads, user: torch.Tensor, vocab_size: int):
        self.heads, self.u, self.vocab_size = heads, user, vocab_size

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        """prefix [B, nb, t] ID tokens so far → log-probs [B, nb, V] of token t (-inf off-level)."""
        b, nb, t = prefix.shape
        q = self.u[:, None].expand(b, nb, -1) + self.heads.prefix(prefix).sum(2)
        logp = torch.log_softmax(self.heads.level_logits(t, q).float(), -1)
        lo, hi = self.heads.ranges[t]
        out = torch.full((b, nb, self.vocab_size), float("-inf"), dtype=logp.dtype, device=logp.device)
        out[..., lo:hi] = logp
        return out

    def select(self, rows: torch.Tensor) -> StepState:
        return StepState(self.heads, self.u[rows], self.vocab_size)


class SIDEnsemble(nn.Module):
    """``members`` networks of one class and shape, decoded together: each next code's log-probability
    is the mean of the members' (state-dict keys ``members.<m>.<the member's keys>``)."""

    def __init__(self, network: type[SIDRecModel], a: SIDArgs):
        super().__init__()
        self.args = a
        one = SIDArgs(**{**asdict(a), "members": 1})
        self.members = nn.ModuleList(network(one) for _ in range(a.members))

    def start(self, tokens: torch.Tensor) -> EnsembleStep:
        return EnsembleStep([m.start(tokens) for m in self.members])


class EnsembleStep:
    """The members' decoding states stepped together: mean log-probs, -inf off-level as in each."""

    def __init__(self, steps: list[StepState]):
        self.steps = steps

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        return torch.stack([s(prefix) for s in self.steps]).mean(0)

    def select(self, rows: torch.Tensor) -> EnsembleStep:
        return EnsembleStep([s.select(rows) for s in self.steps])


def build(network: type[SIDRecModel], a: SIDArgs) -> SIDRecModel | SIDEnsemble:
    """The network ``a`` describes: one ``network``, or an ensemble of ``a.members`` of them."""
    return SIDEnsemble(network, a) if a.members > 1 else network(a)
