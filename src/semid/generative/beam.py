"""Batched beam search over Semantic-ID tokens, optionally constrained to valid IDs by a trie.

All users of a batch and all their beams advance together: one model call per ID position, the
trie lookup, masking and top-k are tensor operations (no per-beam Python). The model is only
seen through a *step function*: ``step(prefix [B, nb, t]) -> log-probs [B, nb, V]``; one with a
``follow(parents [B, nb])`` method is told after each step which beam each new beam continues
(so that it can keep a per-beam cache, as TIGER's incremental decoder does).

Scores are the sum of the chosen tokens' log-probabilities (the model's softmax is over its
level's tokens; constraining masks invalid tokens without renormalising, as
``prefix_allowed_tokens_fn`` does in Hugging Face ``generate``). The slow reference in
:mod:`semid.generative.beam_reference` defines the same search one beam at a time.

Ties: candidates are ordered by score, best first, and among equal scores by their token
sequence, the lexicographically smaller (lower token ids, first position first) first. This
total order decides which candidates a full beam keeps and the order of the returned list, so
the search is deterministic and equal to the reference even when many scores tie. It is kept
without Python loops: the beams are stored in lexicographic order of their prefixes, so the
flat index of a candidate (parent beam × token) is its lexicographic rank; a top-k gives the
beam's lowest kept score and, of the candidates with exactly that score, the lowest indices are
kept (:func:`best_in_order`: tensor operations, no loop over candidates). The final list is one
stable sort of the beams by score. Dead beams (score ``-inf``: no valid continuation) are never
returned as items, so which of them fill a beam's spare places is left to ``topk``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from semid.generative.coldstart import ColdStart
from semid.generative.tokens import SIDTokenizer
from semid.generative.trie import PrefixTrie

NEG_INF = float("-inf")
StepFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class BeamResult:
    items: torch.Tensor  # int64 [B, k]: item ids best first, -1 = invalid ID or no candidate
    scores: torch.Tensor  # float [B, k]: summed log-probs, -inf where items == -1 for lack of beams
    tokens: torch.Tensor  # int64 [B, k, L+1]: the generated IDs

    def invalid_rate(self) -> float:
        """Share of returned slots whose generated ID is no item's (unconstrained search only)."""
        real = torch.isfinite(self.scores)
        return float(((self.items < 0) & real).sum() / real.sum().clamp(min=1))


@torch.no_grad()
def beam_search(step: StepFn, batch_size: int, tokenizer: SIDTokenizer, *, trie: PrefixTrie | None,
                beam_size: int = 20, top_k: int = 10, device: torch.device | str = "cpu") -> BeamResult:
    """Beam search for ``batch_size`` users; ``trie=None`` searches freely (any token per level)."""
    b = batch_size
    # the beams of a user, in lexicographic order of their prefixes (not by score)
    prefix = torch.zeros(b, 1, 0, dtype=torch.long, device=device)
    scores = torch.zeros(b, 1, device=device)
    nodes = torch.zeros(b, 1, dtype=torch.long, device=device)
    for depth in range(tokenizer.id_length):
        lo, hi = tokenizer.level_range(depth)
        logp = step(prefix)[..., lo:hi]  # [B, nb, W]
        if trie is not None:
            child = trie.children(depth, nodes)
            logp = logp.masked_fill(child < 0, NEG_INF)
        # flat index = parent's lexicographic rank × W + code: the candidates' lexicographic order
        cand = (scores[..., None] + logp).reshape(b, -1)
        width = hi - lo
        idx = best_in_order(cand, min(beam_size, cand.shape[1]))
        src, code = idx // width, idx % width
        if hasattr(step, "follow"):  # a step that caches per beam (TIGER's decoder) keeps the chosen parents'
            step.follow(src)
        prefix = torch.cat([prefix.gather(1, src[..., None].expand(-1, -1, prefix.shape[2])), (code + lo)[..., None]], 2)
        if trie is not None:
            nodes = child.reshape(b, -1).gather(1, idx)
        scores = cand.gather(1, idx)
    # best first; equal scores keep their lexicographic order
    order = scores.sort(dim=1, descending=True, stable=True).indices
    scores, prefix = scores.gather(1, order), prefix.gather(1, order[..., None].expand(-1, -1, prefix.shape[2]))
    items = trie.leaf_items(nodes.gather(1, order)) if trie is not None else tokenizer.decode(prefix)
    items = items.masked_fill(~torch.isfinite(scores), -1)
    k = min(top_k, items.shape[1])
    return BeamResult(items[:, :k], scores[:, :k], prefix[:, :k])


def best_in_order(cand: torch.Tensor, keep: int) -> torch.Tensor:
    """Column indices of the ``keep`` best scores of each row of ``cand [B, N]``, ascending; of
    equal finite scores the lower indices win (which ``-inf`` candidates fill a row is left open:
    they are dead beams, never returned).

    A top-k of ``keep + 1`` shows where a tie crosses the beam's edge (the ``keep``-th and the next
    score are equal); only those rows are redone: every candidate above the ``keep``-th score is
    kept, and the places left go to the first candidates equal to it. No loop over candidates.
    """
    n = cand.shape[1]
    top, idx = cand.topk(min(keep + 1, n), dim=1)
    idx = idx[:, :keep].sort(dim=1).values
    if n == keep:
        return idx
    thr = top[:, keep - 1]
    split = (top[:, keep] == thr) & torch.isfinite(thr)
    if split.any():
        rows = split.nonzero().view(-1)
        c, t = cand[rows], thr[rows, None]
        at = c == t
        room = (top[rows, :keep] == t).sum(1, keepdim=True)  # places for the candidates equal to the edge score
        chosen = (c > t) | (at & (at.cumsum(1) <= room))
        idx[rows] = chosen.nonzero()[:, 1].view(len(rows), keep)  # row-major: ascending within each row
    return idx


# encode a batch: (histories [list of item-id arrays, at most max_items each], user ids) → step state
StartFn = Callable[[list, np.ndarray], StepFn]


def generative_ranker(start: StartFn, tokenizer: SIDTokenizer, *, max_items: int, beam_size: int, top_k: int,
                      constrained: bool = True, cold_items=None, cold_start_eps: float | None = None,
                      cold_start_codes: int | None = None,
                      batch_users: int = 256, device: str = "cpu"):
    """``rank(histories, users) -> (items [U, top_k], invalid [U, top_k] | None)`` for any model that
    decodes Semantic IDs: users in length-sorted batches, one beam search per batch. With
    ``scores=True`` a third array holds each listed ID's log-probability under the model.

    ``constrained=False`` searches freely and flags generated IDs that are no item's;
    ``cold_start_eps`` (with ``cold_items``, bool [N]): TIGER §4.4, items unseen in training that
    share a generated ID's first L codes join the list, at most ``floor(eps * k)`` of them in each
    top k (:class:`semid.generative.coldstart.ColdStart`); ``cold_start_codes`` < L lets an unseen item
    join when it shares only that many leading codes.
    """
    trie = PrefixTrie(tokenizer).to(device) if constrained else None
    cold = ColdStart(tokenizer.codes, cold_items, cold_start_eps, cold_start_codes) \
        if cold_start_eps is not None and cold_items is not None else None
    search_k = max(top_k, beam_size) if cold is not None else top_k

    @torch.no_grad()
    def rank(histories: list, users: np.ndarray, scores: bool = False) -> tuple:
        hist = [np.asarray(h[-max_items:], dtype=np.int64) for h in histories]
        order = np.argsort([len(h) for h in hist], kind="stable")
        items = np.full((len(hist), top_k), -1, dtype=np.int64)
        invalid = np.zeros((len(hist), top_k), dtype=bool)
        values = np.full((len(hist), top_k), np.nan, dtype=np.float32)
        for a in range(0, len(order), batch_users):
            idx = order[a:a + batch_users]
            res = beam_search(start([hist[i] for i in idx], users[idx]), len(idx), tokenizer, trie=trie,
                              beam_size=beam_size, top_k=search_k, device=device)
            got, logp = res.items, res.scores
            if cold is not None:
                got, logp = cold(got, logp, top_k)
            got, logp = got[:, :top_k], logp[:, :top_k]
            n = got.shape[1]
            items[idx, :n] = got.cpu().numpy()
            invalid[idx, :n] = ((got < 0) & torch.isfinite(logp)).cpu().numpy()
            values[idx, :n] = torch.where(torch.isfinite(logp), logp, torch.nan).float().cpu().numpy()
        out = (items, (invalid if not constrained else None))
        return (*out, values) if scores else out

    rank.score_kind = "log-prob"  # type: ignore[attr-defined]
    return rank
