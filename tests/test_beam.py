"""Trie-constrained beam search: the fast batched search agrees with the slow reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semid.core.errors import ConfigError
from semid.generative.beam import BeamResult, beam_search, best_in_order
from semid.generative.beam_reference import build_dict_trie, model_step_one, reference_beam_search
from semid.generative.coldstart import ColdCap, ColdStart
from semid.generative.tokens import BOS, PAD, SIDTokenizer
from semid.generative.trie import PrefixTrie
from semid.models.tiger.model import ModelArgs, Tiger


def random_catalogue(rng: np.random.Generator, n_items: int, levels: int, k: int) -> np.ndarray:
    """Random codes made unique by a dedup column (as the ID stage does)."""
    codes = rng.integers(0, k, size=(n_items, levels))
    dedup = np.zeros(n_items, dtype=np.int64)
    seen: dict[tuple, int] = {}
    for i, row in enumerate(map(tuple, codes)):
        dedup[i] = seen.get(row, 0)
        seen[row] = dedup[i] + 1
    return np.concatenate([codes, dedup[:, None]], 1)


def tiny_model(tok: SIDTokenizer, seed: int, mask: str = "causal", users: int = 0, recency: bool = False,
               encoder_input: str = "tokens") -> Tiger:
    torch.manual_seed(seed)
    args = ModelArgs(vocab_size=tok.vocab_size, id_length=tok.id_length,
                     level_ranges=[tok.level_range(lvl) for lvl in range(tok.id_length)],
                     d_model=16, n_heads=2, head_dim=8, d_ff=32, encoder_layers=1, decoder_layers=2,
                     dropout=0.0, attn_dropout=0.0, max_items=5, encoder_mask=mask, user_buckets=users,
                     recency_bias=recency, positions="relative" if recency else "absolute", encoder_input=encoder_input)
    model = Tiger(args).double().eval()
    with torch.no_grad():  # larger weights than the init so that log-probs are far from uniform
        for p in model.parameters():
            p.mul_(20.0)
    return model


def histories(tok: SIDTokenizer, rng: np.random.Generator, n_users: int, max_items: int) -> list[torch.Tensor]:
    out = []
    for _ in range(n_users):
        n = int(rng.integers(1, max_items + 1))
        out.append(tok.encode(torch.from_numpy(rng.integers(0, tok.num_items, size=n))).reshape(-1))
    return out


def pad_batch(hist: list[torch.Tensor]) -> torch.Tensor:
    width = max(len(h) for h in hist)
    return torch.stack([torch.cat([h, torch.full((width - len(h),), PAD)]) for h in hist])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_items=st.integers(1, 40), levels=st.integers(1, 3),
       k=st.integers(2, 5), beam=st.integers(1, 8), top_k=st.integers(1, 8), constrained=st.booleans(),
       mask=st.sampled_from(["causal", "bidirectional"]), recency=st.booleans())
def test_fast_beam_matches_reference(seed, n_items, levels, k, beam, top_k, constrained, mask, recency):
    rng = np.random.default_rng(seed)
    tok = SIDTokenizer.from_codes(random_catalogue(rng, n_items, levels, k), codebook_size=k)
    model = tiny_model(tok, seed, mask, recency=recency)
    hist = histories(tok, rng, 3, 5)
    trie = PrefixTrie(tok) if constrained else None
    fast = beam_search(model.start(pad_batch(hist)), len(hist), tok, trie=trie, beam_size=beam, top_k=top_k)
    dict_trie = build_dict_trie(tok) if constrained else None
    step_one = model_step_one(model, hist)
    for u in range(len(hist)):
        ref = reference_beam_search(step_one, u, tok, dict_trie, beam_size=beam, top_k=top_k)
        got = [(int(i), float(s)) for i, s in zip(fast.items[u], fast.scores[u]) if math.isfinite(float(s))]
        assert [i for i, _ in got] == [i for i, _ in ref]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], rtol=1e-9, atol=1e-9)


class GridScores:
    """Log-probs on a coarse grid (multiples of 0.5, exact in floating point), so that many candidate
    scores tie exactly; the same numbers for a batch of beams and for one prefix at a time.

    ``levels=1`` makes every row identical (the scores ignore the prefix and the user)."""

    def __init__(self, rng: np.random.Generator, vocab: int, levels: int, hashes: int = 5):
        self.table = torch.from_numpy(-0.5 * rng.integers(0, levels, size=(hashes, vocab))).double()
        self.weights = torch.from_numpy(rng.integers(1, 7, size=8))
        self.hashes = hashes

    def row(self, users: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        h = users * 3 + (prefix * self.weights[:prefix.shape[-1]]).sum(-1)
        return self.table[h % self.hashes]

    def step(self, n_users: int):
        users = torch.arange(n_users)
        return lambda prefix: self.row(users[:, None].expand(prefix.shape[:2]), prefix)

    def step_one(self, user: int, toks: list[int]) -> torch.Tensor:
        return self.row(torch.tensor(user), torch.tensor(toks, dtype=torch.long))


def assert_same_search(fast, u: int, ref: list[tuple[int, float]], tok: SIDTokenizer):
    """Same items, same order, bit-identical scores; the returned IDs are the items' own tokens."""
    finite = torch.isfinite(fast.scores[u])
    assert fast.items[u][finite].tolist() == [i for i, _ in ref]
    assert fast.scores[u][finite].tolist() == [s for _, s in ref]
    assert not finite[finite.sum():].any()  # the empty slots come last
    for item, tokens in zip(fast.items[u][finite].tolist(), fast.tokens[u][finite]):
        if item >= 0:
            assert torch.equal(tok.item_tokens[item], tokens)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_items=st.integers(1, 40), levels=st.integers(1, 3), k=st.integers(2, 5),
       beam=st.integers(1, 10), top_k=st.integers(1, 10), constrained=st.booleans(), grid=st.integers(1, 3))
def test_fast_beam_matches_reference_when_scores_tie(seed, n_items, levels, k, beam, top_k, constrained, grid):
    """Many exact ties (1 to 3 distinct log-probs per row): both searches keep the same beams and
    return the same list, equal scores ordered by the smaller token sequence first."""
    rng = np.random.default_rng(seed)
    tok = SIDTokenizer.from_codes(random_catalogue(rng, n_items, levels, k), codebook_size=k)
    scores = GridScores(rng, tok.vocab_size, grid)
    users = 3
    trie = PrefixTrie(tok) if constrained else None
    fast = beam_search(scores.step(users), users, tok, trie=trie, beam_size=beam, top_k=top_k)
    dict_trie = build_dict_trie(tok) if constrained else None
    for u in range(users):
        ref = reference_beam_search(scores.step_one, u, tok, dict_trie, beam_size=beam, top_k=top_k)
        assert_same_search(fast, u, ref, tok)


def test_best_in_order_breaks_ties_by_lower_index():
    cand = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 2.0],     # a tie across the edge: the first 1.0s
                         [0.0, 3.0, 2.0, 1.0, 5.0, 4.0],     # no tie: the top 3, ascending
                         [-math.inf, 0.0, -math.inf, -math.inf, 0.0, 0.0]])
    assert best_in_order(cand, 3)[:2].tolist() == [[0, 2, 5], [1, 4, 5]]
    assert best_in_order(cand, 2)[2].tolist() == [1, 4]
    assert best_in_order(cand, 6).tolist() == [list(range(6))] * 3
    got = best_in_order(cand, 4)[2].tolist()  # every finite one, and a dead one in the spare place
    assert got == sorted(got) and {1, 4, 5} < set(got) and len(set(got) & {0, 2, 3}) == 1


@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("beam,top_k", [(1, 1), (3, 3), (5, 2), (40, 40)])
def test_all_scores_equal_returns_the_smallest_ids_in_order(constrained, beam, top_k):
    """Identical rows: every candidate ties, so the search returns the lexicographically smallest
    IDs (of the catalogue when constrained, of all IDs when free), smallest first."""
    rng = np.random.default_rng(4)
    codes = random_catalogue(rng, 25, 2, 4)
    tok = SIDTokenizer.from_codes(codes, codebook_size=4)
    step = lambda prefix: torch.zeros(*prefix.shape[:2], tok.vocab_size, dtype=torch.float64)  # noqa: E731
    res = beam_search(step, 2, tok, trie=PrefixTrie(tok) if constrained else None, beam_size=beam, top_k=top_k)
    n = min(beam, top_k)
    if constrained:
        expected = np.lexsort(codes.T[::-1])[:n].tolist()  # items by their codes
    else:  # every ID in lexicographic order: codes (0, 0, 0), (0, 0, 1), …, decoded (-1 = no item)
        widths = [tok.level_width(d) for d in range(tok.id_length)]
        every = np.stack(np.meshgrid(*[np.arange(w) for w in widths], indexing="ij"), -1).reshape(-1, len(widths))
        expected = tok.decode(torch.from_numpy(every[:n] + tok.offsets)).tolist()
    pad = res.items.shape[1] - len(expected)  # a beam wider than the catalogue leaves empty slots
    for u in range(2):
        assert res.items[u].tolist() == expected + [-1] * pad
        assert res.scores[u].tolist() == [0.0] * len(expected) + [-math.inf] * pad
    ref = reference_beam_search(lambda user, toks: torch.zeros(tok.vocab_size, dtype=torch.float64), 0, tok,
                                build_dict_trie(tok) if constrained else None, beam_size=beam, top_k=top_k)
    assert [i for i, _ in ref] == expected


def test_fast_beam_matches_reference_on_a_model_rounded_to_a_grid():
    """A real model's log-probs rounded to whole nats: ties between beams of different parents and depths."""
    rng = np.random.default_rng(1)
    tok = SIDTokenizer.from_codes(random_catalogue(rng, 40, 2, 4), codebook_size=4)
    model = tiny_model(tok, 1)
    hist = histories(tok, rng, 4, 5)
    state = model.start(pad_batch(hist))
    step_one = model_step_one(model, hist)
    fast = beam_search(lambda p: state(p).round(), len(hist), tok, trie=PrefixTrie(tok), beam_size=6, top_k=6)
    ties = 0
    for u in range(len(hist)):
        ref = reference_beam_search(lambda user, toks: step_one(user, toks).round(), u, tok, build_dict_trie(tok),
                                    beam_size=6, top_k=6)
        assert_same_search(fast, u, ref, tok)
        ties += len(ref) - len({s for _, s in ref})
    assert ties > 0  # the case is not vacuous


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_items=st.integers(1, 60), levels=st.integers(1, 3), k=st.integers(2, 6))
def test_trie_returns_only_catalogue_items(seed, n_items, levels, k):
    rng = np.random.default_rng(seed)
    codes = random_catalogue(rng, n_items, levels, k)
    tok = SIDTokenizer.from_codes(codes, codebook_size=k)
    subset = np.sort(rng.choice(n_items, size=max(1, n_items // 2), replace=False))
    trie = PrefixTrie(tok, subset)
    model = tiny_model(tok, seed)
    hist = histories(tok, rng, 4, 5)
    res = beam_search(model.start(pad_batch(hist)), len(hist), tok, trie=trie, beam_size=6, top_k=6)
    found = res.items[torch.isfinite(res.scores)]
    assert set(found.tolist()) <= set(subset.tolist())
    assert (found >= 0).all()
    # the returned IDs are the items' own tokens, and the trie holds exactly the subset
    for row_items, row_tokens in zip(res.items, res.tokens):
        for item, tokens in zip(row_items.tolist(), row_tokens):
            if item >= 0:
                assert torch.equal(tok.item_tokens[item], tokens)
    inside = trie.contains(tok.item_tokens)
    assert inside.nonzero().view(-1).tolist() == subset.tolist()
    # no duplicates within a user's list
    for row in res.items.tolist():
        real = [i for i in row if i >= 0]
        assert len(real) == len(set(real))


def test_full_beam_is_exhaustive_search():
    """With a beam as wide as the catalogue, constrained search ranks every item by its exact score."""
    rng = np.random.default_rng(0)
    tok = SIDTokenizer.from_codes(random_catalogue(rng, 12, 2, 3), codebook_size=3)
    model = tiny_model(tok, 0)
    hist = histories(tok, rng, 2, 4)
    res = beam_search(model.start(pad_batch(hist)), 2, tok, trie=PrefixTrie(tok), beam_size=12, top_k=12)
    step_one = model_step_one(model, hist)
    for u in range(2):
        exact = []
        for item in range(12):
            toks = tok.item_tokens[item].tolist()
            exact.append(sum(float(step_one(u, toks[:d])[toks[d]]) for d in range(len(toks))))
        assert res.items[u].tolist() == list(np.argsort(-np.array(exact), kind="stable"))
        np.testing.assert_allclose(res.scores[u].numpy(), np.sort(exact)[::-1], atol=1e-9)


def test_unconstrained_reports_invalid_ids():
    codes = np.array([[0, 0, 0], [1, 1, 0]])
    tok = SIDTokenizer.from_codes(codes, codebook_size=4)
    model = tiny_model(tok, 1)
    hist = [tok.encode(torch.tensor([0])).view(-1)]
    res = beam_search(model.start(pad_batch(hist)), 1, tok, trie=None, beam_size=16, top_k=16)
    assert res.items.shape == (1, 16)
    # a beam of 16 holds all 4 × 4 × 1 IDs: the 2 items and 14 IDs that are no item's
    assert sorted(res.items[0].tolist()) == [-1] * 14 + [0, 1]
    assert res.invalid_rate() == 14 / 16
    top4 = BeamResult(res.items[:, :4], res.scores[:, :4], res.tokens[:, :4])
    assert top4.invalid_rate() == (top4.items < 0).float().mean().item()
    # and each ID's score is its exact sum of log-probs, best first
    step_one = model_step_one(model, hist)
    for item, toks, score in zip(res.items[0].tolist(), res.tokens[0].tolist(), res.scores[0].tolist()):
        assert item == int(tok.decode(torch.tensor(toks)))
        assert score == pytest.approx(sum(float(step_one(0, toks[:d])[toks[d]]) for d in range(3)), abs=1e-9)
    assert (res.scores[0].diff() <= 0).all()
    # with an empty slot (a dead beam, score -inf) in the list, the rate counts only the real slots
    dead = BeamResult(torch.tensor([[0, -1, -1]]), torch.tensor([[-1.0, -2.0, -math.inf]]), res.tokens[:, :3])
    assert dead.invalid_rate() == 1 / 2


def test_cold_start_cap_holds_in_every_top_p():
    items = np.array([[5, 1, 6, 7, 2, 3]])
    scores = np.array([[-1.0, -2, -3, -4, -5, -6]])
    cold = np.zeros(10, dtype=bool)
    cold[[5, 6, 7]] = True
    cs = ColdCap(cold, eps=0.25)
    got, s = cs.cap(items, scores, k=4)
    # top 4 with at most one unseen item: 5 (the best) is in, but no earlier than position 4 = 1 / 0.25
    assert got.tolist() == [[1, 2, 3, 5]] and s.tolist() == [[-2.0, -5, -6, -1]]
    got, _ = ColdCap(cold, eps=0.0).cap(items, scores, k=4)
    assert got.tolist() == [[1, 2, 3, -1]]  # eps 0: unseen items never listed
    got, _ = ColdCap(cold, eps=0.5).cap(np.array([[5, 6, 1]]), scores[:, :3], k=4)
    assert got.tolist() == [[1, 5, -1, 6]]  # nothing may fill position 3 (the seen items ran out)


def test_cold_start_cap_leaves_rows_without_unseen_items_as_ranked_and_closes_gaps():
    cold = np.zeros(10, dtype=bool)
    cold[[5, 6]] = True
    items = np.array([[1, 2, 3, -1, -1], [1, -1, 2, 3, -1], [5, 1, 2, 3, 4]])
    got, s = ColdCap(cold, eps=0.5).cap(items, -np.arange(5.0)[None].repeat(3, 0), k=4)
    # row 0: no unseen item, as ranked; row 1: the gap closes (the row-by-row rule skips -1);
    # row 2: the unseen item moves to position 2 = 1 / 0.5
    assert got.tolist() == [[1, 2, 3, -1], [1, 2, 3, -1], [1, 5, 2, 3]]
    assert s[0].tolist() == [0.0, -1, -2, -np.inf] and s[1].tolist() == [0.0, -2, -3, -np.inf]


def test_cold_start_candidates_add_the_unseen_items_sharing_a_generated_prefix():
    codes = np.array([[0, 1, 0], [0, 1, 1], [0, 1, 2], [2, 0, 0], [2, 0, 1], [3, 3, 0]])
    cold = np.array([False, True, True, False, True, True])
    cs = ColdStart(codes, cold, eps=0.5)
    assert cs.mates(0).tolist() == [1, 2] and cs.mates(3).tolist() == [4] and cs.mates(5).tolist() == [5]
    got, s = cs.candidates(np.array([[3, 0, 2, -1]]), np.array([[-1.0, -2.0, -3.0, -np.inf]]))
    # each generated item, then its unseen prefix mates at its score; item 2 (a mate of 0) listed once
    assert got.tolist() == [[3, 4, 0, 1, 2]] and s.tolist() == [[-1.0, -1.0, -2.0, -2.0, -2.0]]


def test_cold_start_codes_widen_the_match_deepest_mates_first():
    codes = np.array([[0, 1, 0], [0, 1, 1], [0, 2, 0], [1, 0, 0], [0, 3, 0], [0, 2, 1]])
    cold = np.array([False, True, True, False, True, True])
    assert ColdStart(codes, cold, eps=0.5).mates(0).tolist() == [1]  # all L = 2 codes: TIGER's rule
    assert ColdStart(codes, cold, eps=0.5, shared=2).mates(0).tolist() == [1]
    wide = ColdStart(codes, cold, eps=0.5, shared=1)
    # both codes shared first (1), then the first code only (2, 4, 5 in item order), each once
    assert wide.mates(0).tolist() == [1, 2, 4, 5] and wide.mates(2).tolist() == [2, 5, 1, 4]
    assert wide.mates(3).tolist() == []
    got, _ = wide.candidates(np.array([[3, 0, -1]]), np.array([[-1.0, -2.0, -np.inf]]))
    assert got.tolist() == [[3, 0, 1, 2, 4, 5]]
    for bad in (0, 3):
        with pytest.raises(ConfigError, match=r"cold_start_codes must lie in 1\.\.2"):
            ColdStart(codes, cold, eps=0.5, shared=bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30), st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0]),
       st.integers(1, 25))
def test_cold_start_cap_gives_the_papers_top_k_at_every_k(flags, eps, k):
    """For every K <= k, the capped list's top K holds the items that taking the candidates in order
    and skipping unseen ones beyond floor(eps·K) gives (the paper's cap, one K at a time)."""
    n = len(flags)
    cold = np.array(flags)
    got, _ = ColdCap(cold, eps).cap(np.arange(n)[None], -np.arange(n, dtype=float)[None], k)
    row = got[0].tolist()
    for K in range(1, k + 1):
        want, unseen = [], 0
        for item in range(n):
            if len(want) == K:
                break
            if cold[item]:
                if unseen >= math.floor(eps * K + 1e-9):
                    continue
                unseen += 1
            want.append(item)
        top = [x for x in row[:K] if x >= 0]
        assert sorted(top) == want
        assert sum(cold[x] for x in top) <= math.floor(eps * K + 1e-9)


def test_tokenizer_roundtrip_and_ranges():
    codes = np.array([[0, 2, 0], [0, 2, 1], [3, 1, 0]])
    tok = SIDTokenizer.from_codes(codes, codebook_size=4)
    assert tok.vocab_size == 3 + 2 * 4 + 2
    assert tok.level_range(0) == (3, 7) and tok.level_range(1) == (7, 11) and tok.level_range(2) == (11, 13)
    assert tok.item_tokens.tolist() == [[3, 9, 11], [3, 9, 12], [6, 8, 11]]
    assert tok.decode(tok.item_tokens).tolist() == [0, 1, 2]
    assert tok.decode(torch.tensor([[3, 9, 12], [3, 8, 11], [7, 9, 11], [BOS, 9, 11]])).tolist() == [1, -1, -1, -1]
    with pytest.raises(ValueError):
        SIDTokenizer.from_codes(np.array([[0, 0], [0, 0]]), codebook_size=2).decode(torch.tensor([3, 5]))


@pytest.mark.parametrize("recency,encoder_input", [(False, "tokens"), (True, "tokens"), (True, "items")])
def test_incremental_decoding_gives_the_full_recomputation(recency, encoder_input):
    """TIGER's cached decoder (one new token per step, beams re-gathered by follow) scores every step
    as the full decoder does; a step wrapped in a function (no follow) falls back to the full pass."""
    rng = np.random.default_rng(3)
    tok = SIDTokenizer.from_codes(random_catalogue(rng, 60, 3, 5), codebook_size=5)
    model = tiny_model(tok, 3, recency=recency, encoder_input=encoder_input)
    hist = histories(tok, rng, 5, 5)
    cached = model.start(pad_batch(hist))
    full = model.start(pad_batch(hist))
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recompute(prefix: torch.Tensor) -> torch.Tensor:
        out = full(prefix)
        calls.append((prefix, out))
        return out

    a = beam_search(cached, len(hist), tok, trie=PrefixTrie(tok), beam_size=7, top_k=7)
    b = beam_search(recompute, len(hist), tok, trie=PrefixTrie(tok), beam_size=7, top_k=7)
    assert cached._cache and not full._cache  # each path was the one taken
    assert torch.equal(a.items, b.items) and torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-12, atol=1e-12)
    # step by step: the same prefixes through a fresh cached state give the full decoder's log-probs
    fresh = model.start(pad_batch(hist))
    for depth, (prefix, want) in enumerate(calls):
        if depth:
            parents = (calls[depth - 1][0][:, :, None, :] == prefix[:, None, :, :-1]).all(-1).float().argmax(1)
            fresh.follow(parents)
        got = fresh(prefix)
        finite = torch.isfinite(want)
        assert torch.equal(finite, torch.isfinite(got))
        torch.testing.assert_close(got[finite], want[finite], rtol=1e-12, atol=1e-12)
