"""The slow, obviously correct beam search that :mod:`semid.generative.beam` must agree with.

One user at a time, one beam at a time: the trie is a dict of dicts, the model is called on a
single prefix, candidates are sorted in Python. Used by the agreement tests and as the
benchmark's baseline; never in the pipeline.

Ties (the rule :mod:`semid.generative.beam` implements too): candidates are ordered by score, best
first, and among equal scores by their token sequence, the lexicographically smaller first. The
same order decides which candidates a full beam keeps and the order of the returned list.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from semid.generative.tokens import SIDTokenizer

# step_one(user, prefix tokens) -> log-probs [V] of the next token
StepOne = Callable[[int, list[int]], torch.Tensor]


def build_dict_trie(tokenizer: SIDTokenizer, items=None) -> dict:
    """Nested dicts token → subtree; a leaf holds ``{"item": id}``."""
    root: dict = {}
    ids = range(tokenizer.num_items) if items is None else items
    for item in ids:
        node = root
        for tok in tokenizer.item_tokens[int(item)].tolist():
            node = node.setdefault(tok, {})
        node["item"] = int(item)
    return root


def reference_beam_search(step_one: StepOne, user: int, tokenizer: SIDTokenizer, trie: dict | None, *,
                          beam_size: int, top_k: int) -> list[tuple[int, float]]:
    """(item, score) best first for one user; item -1 marks an ID that is no item's (free search)."""
    beams: list[tuple[float, list[int], dict | None]] = [(0.0, [], trie)]
    for depth in range(tokenizer.id_length):
        lo, hi = tokenizer.level_range(depth)
        cands = []
        for score, toks, node in beams:
            if score == -math.inf:
                continue
            logp = step_one(user, toks).double().tolist()
            for tok in range(lo, hi):
                if node is not None and tok not in node:
                    continue
                cands.append((score + logp[tok], toks + [tok], node[tok] if node is not None else None))
        cands.sort(key=lambda c: (-c[0], c[1]))  # best first; equal scores: smaller token sequence first
        beams = cands[:beam_size]
    out = []
    for score, toks, node in beams[:top_k]:
        if node is not None:
            out.append((node["item"], score))
        else:
            item = int(tokenizer.decode(torch.tensor(toks))[()])
            out.append((item, score))
    return out


def model_step_one(model, histories: list[torch.Tensor]) -> StepOne:
    """A :data:`StepOne` for a :class:`~semid.models.tiger.model.Tiger`: encodes the user's history alone
    and decodes the single prefix, with no batching or beam packing."""

    encoded: dict[int, object] = {}  # the last user's encoder output (no batching across users)

    @torch.no_grad()
    def step_one(user: int, toks: list[int]) -> torch.Tensor:
        if user not in encoded:
            encoded.clear()
            encoded[user] = model.start(histories[user][None])
        state = encoded[user]
        prefix = torch.tensor(toks, dtype=torch.long).view(1, 1, -1)
        return state(prefix)[0, 0]

    return step_one
