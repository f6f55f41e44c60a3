"""Quality figures of a set of Semantic IDs (``semid ids analyze``).

* reconstruction: mean cosine similarity and MSE between embeddings and their reconstructions;
* code usage per level: share of codes used, entropy, perplexity (collapse shows as low values);
* collisions before TIGER's extra code;
* semantic coherence: mean cosine similarity of item pairs sharing a prefix of length 1…L, next
  to all pairs (Singh et al., RecSys 2024, report 0.41 / 0.68 / 0.91 / 0.97 for lengths 1–4);
* category purity per prefix, next to the same groups with shuffled categories;
* next-item agreement: how often an item and the item a user took next share a prefix of 1…L codes,
  against the share if the two were drawn independently (lift). Text coherence says the IDs group
  similar texts; this says whether they group what users take one after another, which is what a
  generative model on the IDs learns from (weak item text can give the first without the second);
* what first-level codes mean: distinctive title words, categories and example titles.

Pair means are computed exactly in closed form: for unit vectors, the sum of cos(i, j) over
ordered pairs i ≠ j of a group is ‖Σ x‖² − n. :func:`pair_cosine_reference` is the slow
pairwise loop the tests compare it with.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from typing import Any

import numpy as np

from semid.ids.dedup import collision_stats

SINGH_PREFIX_COSINE = [0.41, 0.68, 0.91, 0.97]
_WORD = re.compile(r"[a-z][a-z0-9'\-]{2,}")


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def reconstruction(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    """Mean cosine similarity, MSE per element, and mean squared error per item (sum over dims)."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    cos = (unit(x) * unit(x_hat)).sum(1)
    err = (x - x_hat) ** 2
    return {"mean_cosine": float(cos.mean()), "mse": float(err.mean()), "sq_error_per_item": float(err.sum(1).mean())}


def level_usage(codes: np.ndarray, codebook_size: int) -> list[dict[str, Any]]:
    """Per level: codes used, their share of K, entropy (bits) of the code distribution, its
    maximum log2 K, perplexity 2^entropy, and the largest code's share of items."""
    out = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * np.log2(p)).sum())
        out.append({"level": level + 1, "used": int((counts > 0).sum()), "used_share": float((counts > 0).mean()),
                    "entropy_bits": entropy, "max_entropy_bits": math.log2(codebook_size),
                    "perplexity": 2.0 ** entropy, "largest_code_share": float(counts.max() / counts.sum()),
                    "counts": counts.tolist()})
    return out


def group_ids(codes: np.ndarray) -> np.ndarray:
    """Group index of each row (rows with equal codes share it)."""
    if codes.shape[1] == 0:
        return np.zeros(len(codes), dtype=np.int64)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def pair_cosine(x: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Mean cosine similarity over all pairs of distinct items in the same group, and the number
    of such (unordered) pairs; NaN when no group has two items."""
    xn = unit(x)
    sums = np.zeros((int(groups.max()) + 1, xn.shape[1]))
    np.add.at(sums, groups, xn)
    sizes = np.bincount(groups).astype(np.float64)
    ordered = float((sizes * (sizes - 1)).sum())
    if ordered == 0:
        return float("nan"), 0
    total = float((sums ** 2).sum() - (xn ** 2).sum())
    return total / ordered, int(ordered // 2)


def pair_cosine_reference(x: np.ndarray, groups: np.ndarray) -> float:
    """Slow reference of :func:`pair_cosine`: average over an explicit loop of pairs."""
    xn = unit(x)
    vals = [float(xn[i] @ xn[j]) for i in range(len(xn)) for j in range(i + 1, len(xn)) if groups[i] == groups[j]]
    return float(np.mean(vals)) if vals else float("nan")


def prefix_coherence(x: np.ndarray, codes: np.ndarray) -> dict[str, Any]:
    """Mean cosine of pairs sharing a prefix of length 1…L, and of all pairs (the random baseline)."""
    rows = []
    for length in range(1, codes.shape[1] + 1):
        g = group_ids(codes[:, :length])
        mean, pairs = pair_cosine(x, g)
        rows.append({"prefix_len": length, "mean_cosine": mean, "pairs": pairs, "groups": int(g.max()) + 1})
    all_pairs, _ = pair_cosine(x, np.zeros(len(x), dtype=np.int64))
    return {"prefix": rows, "random_pairs": all_pairs, "singh_et_al": SINGH_PREFIX_COSINE}


def next_item_agreement(codes: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> list[dict[str, Any]]:
    """For pairs (``prev[i]`` → ``nxt[i]``) of item indices, per prefix length 1…L: the share of
    pairs whose IDs share that prefix, the share expected if the next item were drawn independently
    of the previous one from the same frequencies (Σ over prefixes of P_prev · P_next), and their ratio."""
    rows = []
    if len(prev) == 0:
        return rows
    for length in range(1, codes.shape[1] + 1):
        g = group_ids(codes[:, :length])
        a, b = g[prev], g[nxt]
        n = int(g.max()) + 1
        expected = float(np.bincount(a, minlength=n) @ np.bincount(b, minlength=n)) / len(a) ** 2
        share = float(np.mean(a == b))
        rows.append({"prefix_len": length, "share": share, "expected": expected,
                     "lift": share / expected if expected > 0 else float("nan")})
    return rows


def first_next_item(report: dict[str, Any]) -> dict[str, Any] | None:
    """The first-level validation row of a report's next-item agreement (None when it has none)."""
    rows = ((report.get("next_item") or {}).get("val") or {}).get("prefix") or []
    return rows[0] if rows else None


def next_item_text(row: dict[str, Any] | None) -> str:
    """``14.0% (×22.8)``: a share of pairs and its lift over chance; "–" when there is none."""
    return "–" if row is None or row.get("share") is None else f"{row['share']:.1%} (×{row['lift']:.1f})"


def next_item_agreement_reference(codes: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> list[dict[str, Any]]:
    """Slow reference of :func:`next_item_agreement`: explicit loops over pairs and pairs of pairs."""
    rows = []
    for length in range(1, codes.shape[1] + 1):
        key = [tuple(c[:length]) for c in codes.tolist()]
        share = sum(key[a] == key[b] for a, b in zip(prev, nxt)) / len(prev)
        expected = sum(key[a] == key[b] for a in prev for b in nxt) / len(prev) ** 2
        rows.append({"prefix_len": length, "share": share, "expected": expected,
                     "lift": share / expected if expected else float("nan")})
    return rows


def transitions(histories: list[list[int]], targets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive (item, next item) pairs of every sequence ``history + [target]``."""
    lens = np.fromiter((len(h) + 1 for h in histories), dtype=np.int64, count=len(histories))
    flat = np.empty(int(lens.sum()), dtype=np.int64)
    ends = np.cumsum(lens) - 1  # each sequence's last position: its target
    flat[ends] = np.asarray(targets, dtype=np.int64)
    keep = np.ones(len(flat), dtype=bool)
    keep[ends] = False
    flat[keep] = np.fromiter(itertools.chain.from_iterable(histories), dtype=np.int64, count=int(keep.sum()))
    inner = np.ones(max(len(flat) - 1, 0), dtype=bool)
    inner[ends[:-1]] = False  # a pair may not cross from one sequence into the next
    return flat[:-1][inner], flat[1:][inner]


def purity(groups: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose label is their group's most common label."""
    pairs = Counter(zip(groups.tolist(), labels.tolist(), strict=True))
    best: dict[int, int] = {}
    for (g, _), n in pairs.items():
        best[g] = max(best.get(g, 0), n)
    return sum(best.values()) / len(groups)


def category_purity(codes: np.ndarray, categories: list[list[str] | None], seed: int = 0) -> dict[str, Any] | None:
    """Purity of top-level and leaf categories per prefix length, and with shuffled labels (the
    same group sizes, no semantics: small groups look pure by chance). None without categories."""
    keep = np.array([bool(c) for c in categories])
    if keep.sum() < 2:
        return None
    cats = [c for c in categories if c]
    labels = {"top": np.array([c[0] for c in cats]), "leaf": np.array([" > ".join(c) for c in cats])}
    rng = np.random.default_rng(seed)
    rows = []
    for length in range(1, codes.shape[1] + 1):
        g = group_ids(codes[keep, :length])
        row: dict[str, Any] = {"prefix_len": length}
        for name, lab in labels.items():
            row[f"{name}_purity"] = purity(g, lab)
            row[f"{name}_purity_shuffled"] = purity(g, rng.permutation(lab))
        rows.append(row)
    return {"items_with_categories": int(keep.sum()), "prefix": rows,
            "distinct_top": len(set(labels["top"].tolist())), "distinct_leaf": len(set(labels["leaf"].tolist()))}


def code_meanings(x: np.ndarray, first: np.ndarray, titles: list[str], categories: list[list[str] | None] | None,
                  top_words: int = 8, examples: int = 3) -> list[dict[str, Any]]:
    """For each first-level code: items, most distinctive title words (share in the code × log
    lift over the catalogue), commonest leaf categories, and the titles nearest its centroid."""
    docs = [set(_WORD.findall((t or "").lower())) for t in titles]
    df_all = Counter(w for d in docs for w in d)
    n = len(titles)
    xn = unit(x)
    out = []
    for code in np.unique(first):
        members = np.flatnonzero(first == code)
        m = len(members)
        counts = Counter(w for i in members for w in docs[i])
        scored = []
        for w, c in counts.items():
            if c < 2 and m > 2:
                continue
            share = c / m
            scored.append((share * math.log(share / (df_all[w] / n)), w))
        scored.sort(reverse=True)
        entry: dict[str, Any] = {"code": int(code), "items": m, "words": [w for _, w in scored[:top_words]]}
        if categories is not None:
            cats = Counter(" > ".join(categories[i]) for i in members if categories[i])
            entry["categories"] = [{"category": c, "share": k / m} for c, k in cats.most_common(3)]
        centroid = xn[members].mean(0)
        near = members[np.argsort(-(xn[members] @ centroid), kind="stable")[:examples]]
        entry["examples"] = [titles[i] for i in near]
        out.append(entry)
    return sorted(out, key=lambda e: -e["items"])


def tsne_map(x: np.ndarray, sample: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE coordinates of a random sample of items (after PCA to 50 dims); returns (rows, xy)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(sample, len(x)), replace=False))
    xs = np.asarray(x[rows], dtype=np.float32)
    if xs.shape[1] > 50 and len(xs) > 50:
        xs = PCA(n_components=50, random_state=seed).fit_transform(xs)
    perplexity = float(min(30, max(2, (len(xs) - 1) / 3)))
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity, max_iter=500).fit_transform(xs)
    return rows, xy


def summarize(x: np.ndarray, codes_full: np.ndarray, codebook_size: int, x_hat: np.ndarray | None,
              categories: list[list[str] | None] | None = None, seed: int = 0,
              reencoded: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure that does not need titles or plots (the sweep uses this). ``reencoded``: for IDs
    whose collisions were re-encoded, the collisions before and the items moved (``collisions`` and
    ``reencoded_items`` of the training manifest)."""
    levels = codes_full.shape[1] - 1
    codes = codes_full[:, :levels]
    report: dict[str, Any] = {"items": len(codes), "levels": levels, "codebook_size": codebook_size}
    report["reconstruction"] = reconstruction(x, x_hat) if x_hat is not None else None
    report["usage"] = level_usage(codes, codebook_size)
    report["collisions"] = collision_stats(codes) if reencoded is None else dict(reencoded["collisions"])
    report["collisions"]["reencoded_items"] = 0 if reencoded is None else int(reencoded["reencoded_items"])
    report["collisions"]["unique_after_dedup"] = collision_stats(codes_full)["unique_ids"] == len(codes)
    report["collisions"]["max_dedup"] = int(codes_full[:, -1].max()) if len(codes) else 0
    report["coherence"] = prefix_coherence(x, codes)
    report["category_purity"] = category_purity(codes, categories, seed) if categories is not None else None
    return report
