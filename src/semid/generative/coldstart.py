"""Cold-start retrieval of TIGER §4.4 on the ranked items a beam search generated.

A model that decodes Semantic IDs never saw an item held out of training as a target, so it
almost never generates that item's full ID (its dedup code, or its whole prefix, is new to it).
TIGER instead lets an unseen item whose first L codes (its Semantic ID without the dedup code)
match a generated ID join the candidates, and caps the share of unseen items in the top K with ε
(``cold_start_codes`` < L widens the match to the first few codes, deepest matches first):

1. :meth:`ColdStart.candidates`: each generated item, then the unseen items that share its first L
   codes, with its score (a tie, listed right after it); each item once.
2. :meth:`ColdStart.cap`: the list with at most ``floor(ε·p)`` unseen items in every top ``p``.
   Unseen item ``j`` (in candidate order) goes to the first position that its rank, the cap and
   the items before it allow, and seen items fill the other positions in order. The top-K set is
   then, for every K at once, what taking the candidates in order and skipping unseen items beyond
   ``floor(ε·K)`` gives (``tests/test_beam.py`` checks this against that slow rule), so Recall@K
   follows the paper's cap at each K; an unseen item may sit lower in the list than its score
   (at position ``ceil(j/ε)`` at best), which NDCG sees. A position nothing may fill stays empty (-1).

:class:`ColdCap` is step 2 alone: the evaluate stage applies it to the ranked list of a model that
scores every item itself (KNN, SASRec, Pop, …), so that in cold-start mode every model plays by the
same rule. :data:`RULE` names the rule in each metrics file scored in this mode.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from semid.core.errors import ConfigError

NEG_INF = float("-inf")


def prefix_keys(codes: np.ndarray, depth: int | None = None) -> np.ndarray:
    """One int64 per item naming its first ``depth`` codes (default L: ``codes`` is [N, L+1], the last
    column the dedup code)."""
    prefix = np.asarray(codes, dtype=np.int64)[:, :-1]
    prefix = prefix[:, :depth] if depth is not None else prefix
    base = int(prefix.max()) + 1 if prefix.size else 1
    if base ** prefix.shape[1] >= 2 ** 62:
        raise ValueError(f"{prefix.shape[1]} levels of {base} codes do not fit one int64 key")
    return prefix @ (base ** np.arange(prefix.shape[1] - 1, -1, -1, dtype=np.int64))


# names the rule in every metrics file scored in cold-start mode; a file scored by another rule is rescored
RULE = ("TIGER 4.4: unseen items sharing a generated ID's first L codes join at its score; at most floor(eps*p) "
        "unseen in every top p of every model's list, history kept and history removed (v2)")


def check_codes(eps: float | None, codes: int | None) -> None:
    """``cold_start_codes`` only means something in cold-start mode (a config validator's check)."""
    if codes is not None and eps is None:
        raise ValueError("cold_start_codes applies in cold-start mode only: set cold_start_eps too")


class ColdCap:
    """The cap alone: at most ``floor(eps·p)`` of the unseen items (``cold``: bool [N]) in every top
    ``p`` of a ranked list. What cold-start mode applies to a model that scores every item itself
    (KNN, SASRec, Pop, …), so that it plays by the generative models' rule."""

    def __init__(self, cold: np.ndarray, eps: float):
        if not 0 <= eps <= 1:
            raise ValueError(f"cold_start_eps must lie in [0, 1], got {eps}")
        self.cold = np.asarray(cold, dtype=bool)
        self.eps = float(eps)

    def first_position(self, j: int) -> float:
        """The first 1-based position ``p`` with ``floor(eps·p) >= j`` (inf when eps is 0)."""
        return math.ceil(j / self.eps - 1e-9) if self.eps > 0 else math.inf

    def cap(self, items: np.ndarray, scores: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``k`` positions of each ranked row with at most ``floor(eps·p)`` unseen items in
        every top ``p`` (see the module's docstring) → ``[U, k]`` items (-1 empty) and scores
        (``scores`` None: a list ranked without scores, zeros)."""
        items = np.asarray(items)
        scores = np.zeros(items.shape) if scores is None else np.asarray(scores, dtype=np.float64)
        got = np.full((len(items), k), -1, dtype=np.int64)
        val = np.full((len(items), k), NEG_INF, dtype=np.float64)
        width = min(k, items.shape[1]) if items.ndim == 2 else 0
        if width:  # rows without an unseen item and without a gap (-1 before an item) stay as ranked
            gapless = (np.diff((items < 0).astype(np.int8), axis=1) >= 0).all(1)
            plain = gapless & ~((items >= 0) & self.cold[np.maximum(items, 0)]).any(1)
        else:
            plain = np.ones(len(items), dtype=bool)
        got[plain, :width], val[plain, :width] = items[plain, :width], scores[plain, :width]
        val[got < 0] = NEG_INF
        for u in np.flatnonzero(~plain).tolist():
            row, sc = items[u].tolist(), scores[u].tolist()
            placed, warm, last = {}, [], 0
            j = 0
            for item, score in zip(row, sc):
                if item < 0:
                    continue
                if not self.cold[item]:
                    warm.append((item, score))
                    continue
                j += 1
                pos = max(last + 1, self.first_position(j), len(warm) + j)
                if pos <= k:  # beyond k, so is every later unseen item; the seen ones still fill the list
                    placed[pos], last = (item, score), pos
            it = iter(warm)
            for p in range(1, k + 1):
                entry = placed.get(p) or next(it, None)
                if entry is not None:
                    got[u, p - 1], val[u, p - 1] = entry
        return got, val


class ColdStart(ColdCap):
    """The unseen items (``cold``: bool [N]) grouped by their first codes, and the cap ``eps``.

    ``shared`` (1 to L; unset: L, TIGER's rule) is how many leading codes an unseen item must share
    with a generated ID to join the list: with fewer than L, the mates sharing all L codes come
    first, then those sharing L-1, … down to ``shared``."""

    def __init__(self, codes: np.ndarray, cold: np.ndarray, eps: float, shared: int | None = None):
        super().__init__(cold, eps)
        levels = np.asarray(codes).shape[1] - 1
        shared = levels if shared is None else int(shared)
        if not 1 <= shared <= levels:
            raise ConfigError(f"cold_start_codes must lie in 1..{levels} (the IDs' levels without the dedup code), got {shared}")
        ids = np.flatnonzero(self.cold)
        self.groups = []  # per depth, deepest first: (every item's key, the unseen items sorted by key, their keys)
        for depth in range(levels, shared - 1, -1):
            key = prefix_keys(codes, depth)
            order = np.argsort(key[ids], kind="stable")
            self.groups.append((key, ids[order], key[ids[order]]))

    def mates(self, item: int) -> np.ndarray:
        """The unseen items that share at least ``shared`` leading codes with ``item``, those sharing
        more first (each once)."""
        found = []
        for key, cold_ids, cold_keys in self.groups:
            k = key[item]
            found.append(cold_ids[np.searchsorted(cold_keys, k, "left"):np.searchsorted(cold_keys, k, "right")])
        if len(found) == 1:
            return found[0]
        out = np.concatenate(found)
        _, first = np.unique(out, return_index=True)
        return out[np.sort(first)]

    def candidates(self, items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's generated items (best first; -1 = empty) with, after each, its unseen prefix
        mates at its score; every item once → ``[U, C]`` items and scores, -1 / -inf padded."""
        rows: list[tuple[list[int], list[float]]] = []
        for row_items, row_scores in zip(items.tolist(), scores.tolist()):
            seen, out, sc = set(), [], []
            for item, score in zip(row_items, row_scores):
                if item < 0:
                    continue
                for x in (item, *self.mates(item).tolist()):
                    if x not in seen:
                        seen.add(x)
                        out.append(x)
                        sc.append(score)
            rows.append((out, sc))
        width = max((len(r[0]) for r in rows), default=0)
        got = np.full((len(rows), width), -1, dtype=np.int64)
        val = np.full((len(rows), width), NEG_INF, dtype=np.float64)
        for u, (out, sc) in enumerate(rows):
            got[u, :len(out)], val[u, :len(sc)] = out, sc
        return got, val

    def __call__(self, items: torch.Tensor, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates then the cap, on a beam search's ``[U, B]`` items and log-probabilities."""
        got, val = self.cap(*self.candidates(items.cpu().numpy(), scores.double().cpu().numpy()), k)
        return (torch.from_numpy(got).to(items.device),
                torch.from_numpy(val).to(device=scores.device, dtype=scores.dtype))


__all__ = ["RULE", "ColdCap", "ColdStart", "check_codes", "prefix_keys"]
