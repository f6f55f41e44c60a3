"""Summary, paired tests, claims, tables and plots of the ranking study.

Every comparison is on one quantity, the **per-list AUC** (``auc_user``) of each test event: a
model's result on a slice is a matrix ``[seeds, events]`` and a comparison A − B (the same events,
paired) reports

- ``delta``: mean of A over seeds × events minus that of B (the Δ shown everywhere);
- ``ci95``, ``p_bootstrap``: :func:`semid.evaluate.stats.paired_bootstrap`, each replicate drawing
  the events once for both models and each model's seeds with replacement (seed variance counts);
- ``p_permutation``: :func:`semid.evaluate.stats.paired_permutation`, the sign-flip test on the
  per-event differences of the seed means (it treats the trained networks as given);
- ``p_seeds``: the normal p of Δ over the bootstrap's standard error, which counts the seed spread;
  ``p_test``, the larger of the two, is the p that Holm corrects (:func:`semid.evaluate.stats.compare`);
- ``p_ttest_seeds``: an extra column, the paired t-test over seeds of the per-seed means (3 seeds:
  little power; not used by any verdict).

Claims: the paper's three findings. Every comparison listed under any claim of one study (the ones
that decide a verdict and the "context" ones) forms one family whose ``p_test`` values are
Holm-adjusted (``p_holm``; a record written before ``p_test`` existed used the permutation p); each
comparison's verdict is :func:`semid.evaluate.stats.verdict` (better / worse only when the adjusted
p < α and the bootstrap CI excludes 0), and a claim is *supported* when all its comparisons are
better, *partly supported* when some are and none is worse, *contradicted* when any is worse, *not
supported* when none differs. How many of the better / worse verdicts the seed-level t-test (p < α,
unadjusted) also backs is counted (``seed_t_test``): with 3 seeds the bootstrap's seed resampling is
coarse.

The collision check (``unigram_dedup`` − ``unigram``, a family of its own) reads off the effect of
SID collisions.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from semid.core import artifacts
from semid.evaluate import stats
from semid.rank import plots

METRICS = ("auc", "auc_user", "ndcg@10", "recall@10")
SID = ("unigram", "bigram", "prefix", "spm")  # the paper's SID representations (the claims)
ONE_SIZE = ("unigram", "unigram_dedup", "dense")  # one table size, compared with hash at every T
REFERENCE = {"unigram_dedup": "unigram"}  # collision-free reference → the SID representation it fixes
CLAIMS = ("Semantic IDs beat random hashing on cold-start items",
          "With history, unigram/bigram SIDs beat random hashing overall",
          "SPM-SID is best at large table sizes")

Key = tuple[str, int, bool]  # (representation, table size, history)
Mats = dict[tuple[str, int, bool, str], tuple[list[int], np.ndarray]]  # (…, slice) → (seeds, [seeds, events])


def ci95(values: list[float]) -> list[float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return [float(v.mean()), float(v.mean())]
    half = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def matrices(events: dict[tuple, np.ndarray], slices: dict[str, np.ndarray]) -> Mats:
    """Per-seed per-event values ``{(rep, size, history, seed): [events]}`` → ``{(rep, size,
    history, slice): (seeds, [seeds, events of the slice])}``."""
    by: dict[Key, dict[int, np.ndarray]] = defaultdict(dict)
    for (rep, size, hist, seed), values in events.items():
        by[(rep, size, hist)][seed] = np.asarray(values, dtype=np.float64)
    out: Mats = {}
    for key, per_seed in by.items():
        seeds = sorted(per_seed)
        full = np.stack([per_seed[s] for s in seeds])
        for sl, mask in slices.items():
            out[(*key, sl)] = (seeds, full[:, np.asarray(mask)])
    return out


def paired(a: Any, b: Any, seeds_a: Sequence[int] | None = None, seeds_b: Sequence[int] | None = None, *,
           n_boot: int = 1000, n_perm: int = 10000, seed: int = 0) -> dict[str, Any] | None:
    """A − B on per-event values ``[seeds, events]`` paired by event (None when no events)."""
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[1] == 0:
        return None
    res = stats.compare(a, b, n_boot=n_boot, n_perm=n_perm, seed=seed)
    seeds_a = list(range(len(a))) if seeds_a is None else list(seeds_a)
    seeds_b = list(range(len(b))) if seeds_b is None else list(seeds_b)
    common = [s for s in seeds_a if s in seeds_b]
    d = np.array([a[seeds_a.index(s)].mean() - b[seeds_b.index(s)].mean() for s in common])
    p_t = float(sps.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and d.std() > 0 else None
    return {"delta": res["delta"], "ci95": res["ci95"], "p_bootstrap": res["p_bootstrap"],
            "p_permutation": res["p_permutation"], "p_seeds": res["p_seeds"], "p_test": res["p_test"],
            "p_ttest_seeds": p_t, "delta_by_seed": [float(x) for x in d],
            "n_seeds": [len(a), len(b)], "n_events": int(a.shape[1]), "n_boot": n_boot, "n_perm": n_perm}


class Comparisons:
    """Memoised :func:`paired` comparisons between the cells of ``mats`` (each pair tested once)."""

    def __init__(self, mats: Mats, *, n_boot: int = 1000, n_perm: int = 10000, seed: int = 0):
        self.mats, self.n_boot, self.n_perm, self.seed = mats, n_boot, n_perm, seed
        self.keys: set[Key] = {k[:3] for k in mats}
        self._cache: dict[tuple, dict[str, Any] | None] = {}

    def __call__(self, a: Key, b: Key, sl: str) -> dict[str, Any] | None:
        key = (a, b, sl)
        if key not in self._cache:
            if (*a, sl) not in self.mats or (*b, sl) not in self.mats:
                self._cache[key] = None
            else:
                (sa, va), (sb, vb) = self.mats[(*a, sl)], self.mats[(*b, sl)]
                self._cache[key] = paired(va, vb, sa, sb, n_boot=self.n_boot, n_perm=self.n_perm, seed=self.seed)
        return self._cache[key]


def hash_baselines(keys: Iterable[Key], rep: str, size: int, hist: bool) -> list[int]:
    """Hash table sizes ``rep`` at ``size`` is compared with: the same T for swept methods, every T
    for the one-size ones (or when hash has no table of that size)."""
    sizes = sorted({k[1] for k in keys if k[0] == "hash" and k[2] == hist})
    return [size] if size in sizes and rep not in ONE_SIZE else sizes


def _reference(keys: Iterable[Key], rep: str, hist: bool) -> Key | None:
    ref = REFERENCE.get(rep)
    return next((k for k in sorted(keys) if k[0] == ref and k[2] == hist), None)


def summarize(records: list[dict], cmp: Comparisons) -> list[dict[str, Any]]:
    """One row per (representation, table size, history, slice): means over seeds with 95% t
    intervals, and the paired comparisons with hash (``vs_hash``) and, for a collision-free
    reference, with the representation it fixes (``vs_<representation>``)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["representation"], r["table_size"], r["history"], r["slice"])].append(r)
    out = []
    order = sorted(groups.items(), key=lambda kv: (kv[0][3], not kv[0][2], kv[0][0], kv[0][1]))
    for (rep, size, hist, sl), rs in order:
        row: dict[str, Any] = {"representation": rep, "table_size": size, "history": hist, "slice": sl,
                               "rows": rs[0]["rows"], "params": rs[0]["params"], "n_seeds": len(rs),
                               "n_events": rs[0]["n_events"]}
        for m in METRICS:
            vals = [r[m] for r in rs if r[m] == r[m]]
            row[m] = float(np.mean(vals)) if vals else float("nan")
            row[f"{m}_ci95"] = ci95(vals) if vals else None
        row["vs_hash"] = []
        if rep != "hash" and rs[0]["n_events"]:
            for hs in hash_baselines(cmp.keys, rep, size, hist):
                c = cmp((rep, size, hist), ("hash", hs, hist), sl)
                if c is not None:
                    row["vs_hash"].append({"hash_table_size": hs, **c})
        ref = _reference(cmp.keys, rep, hist)
        if ref is not None:
            c = cmp((rep, size, hist), ref, sl)
            row[f"vs_{ref[0]}"] = None if c is None else {"table_size": ref[1], **c}
        out.append(row)
    return out


def significance(c: dict[str, Any] | None, alpha: float = 0.05) -> str:
    """One comparison's verdict from its Holm-adjusted p and bootstrap CI:
    "better", "worse", "no significant difference" or "not tested"."""
    if c is None:
        return "not tested"
    return stats.verdict(c["delta"], c.get("ci95"), c.get("p_holm"), alpha)


def claim_verdict(verdicts: Sequence[str]) -> str:
    """A claim from its comparisons' verdicts: supported (all better), partly supported (some
    better, none worse), contradicted (any worse), not supported (none differs), not tested."""
    if not verdicts or all(v == "not tested" for v in verdicts):
        return "not tested"
    if "worse" in verdicts:
        return "contradicted"
    if all(v == "better" for v in verdicts):
        return "supported"
    return "partly supported" if "better" in verdicts else "not supported"


def _label(k: Key) -> str:
    return f"{k[0]}@{k[1]}"


def _p(p: float | None, n: int | None = None) -> str:
    """A p-value at 2 digits (``n``: the bootstrap resamples behind it)."""
    return stats.format_p(p, 2, n)


def _fmt(e: dict[str, Any]) -> str:
    if e.get("delta") is None:
        return f"{e['a']} − {e['b']} ({e['slice']}): not tested"
    lo, hi = e["ci95"] or (float("nan"), float("nan"))
    return (f"{e['a']} − {e['b']} ({e['slice']}): Δ {e['delta']:+.4f} [{lo:+.4f}, {hi:+.4f}], "
            f"p_perm {_p(e['p_permutation'])}, p_seeds {_p(e.get('p_seeds'))}, p_Holm {_p(e['p_holm'])}, seed t-test p {_p(e['p_ttest_seeds'])}"
            f" → {e['verdict']}")


def _tested(cmp: Comparisons, specs: list[tuple], alpha: float) -> list[dict[str, Any]]:
    """Comparisons of ``specs`` [(group, role, a, b, slice)], Holm-adjusted as one family."""
    comps = [cmp(a, b, sl) for _, _, a, b, sl in specs]
    adjusted = stats.holm([None if c is None else c["p_test"] for c in comps])
    out = []
    for (group, role, a, b, sl), c, p in zip(specs, comps, adjusted, strict=True):
        e = {"group": group, "role": role, "a": _label(a), "b": _label(b), "slice": sl, "history": a[2],
             **(c or {"delta": None}), "p_holm": p}
        e["verdict"] = significance(None if c is None else e, alpha)
        out.append(e)
    return out


def _seed_t_agrees(e: dict[str, Any], alpha: float) -> bool:
    """Whether the seed-level t-test (unadjusted) also rejects "no difference" for a comparison."""
    return e.get("p_ttest_seeds") is not None and e["p_ttest_seeds"] < alpha


def claims(cmp: Comparisons, alpha: float = 0.05) -> list[dict[str, Any]]:
    """The paper's three claims, each from Holm-adjusted paired tests (one family per study)."""
    keys = cmp.keys
    hist = any(k[2] for k in keys)
    specs: list[tuple] = []

    def vs_hash(group: int, role: str, reps: Sequence[str], h: bool, sl: str) -> None:
        for rep, size, hh in sorted(keys):
            if rep in reps and hh == h:
                specs.extend((group, role, (rep, size, h), ("hash", hs, h), sl)
                             for hs in hash_baselines(keys, rep, size, h))

    vs_hash(0, "test", SID, hist, "cold")
    if hist:
        vs_hash(1, "test", ("unigram", "bigram"), True, "all")
    if hist and any(not k[2] for k in keys):
        vs_hash(1, "context", ("unigram", "bigram"), False, "all")
    swept = [k for k in keys if k[0] in ("bigram", "prefix", "spm") and k[2] == hist]
    top = max((k[1] for k in swept), default=None)
    if ("spm", top, hist) in keys:
        others = [(r, top, hist) for r in ("bigram", "prefix") if (r, top, hist) in keys]
        others += [k for k in sorted(keys) if k[0] == "unigram" and k[2] == hist]
        specs += [(2, "test", ("spm", top, hist), o, sl) for sl in ("all", "cold") for o in others]
    tested = _tested(cmp, specs, alpha)
    m = sum(e["p_holm"] is not None for e in tested)
    out = []
    for i, text in enumerate(CLAIMS):
        mine = [e for e in tested if e["group"] == i and e["role"] == "test"]
        context = [e for e in tested if e["group"] == i and e["role"] == "context"]
        verdicts = [e["verdict"] for e in mine]
        counts = {v: verdicts.count(v) for v in ("better", "worse", "no significant difference", "not tested")}
        decided = [e for e in mine if e["verdict"] in ("better", "worse")]
        seed_t = {"decided": len(decided), "seed_t_below_alpha": sum(_seed_t_agrees(e, alpha) for e in decided)}
        figures = (f"{counts['better']}/{len(mine)} comparisons significantly better, {counts['worse']} significantly "
                   f"worse (per-list AUC; Holm over the study's {m} claim comparisons, α = {alpha:g}, and the "
                   f"bootstrap CI excluding 0); {seed_t['seed_t_below_alpha']} of these {len(decided)} also have a "
                   f"seed-level t-test p < {alpha:g}: " + ("; ".join(_fmt(e) for e in mine) or "none run"))
        if context:
            figures += ". Context (not in the verdict), without history: " + "; ".join(_fmt(e) for e in context)
        out.append({"claim": text, "history": hist if i != 1 else True, "verdict": claim_verdict(verdicts),
                    "counts": counts, "seed_t_test": seed_t, "comparisons": [{k: v for k, v in e.items() if k != "group"} for e in mine + context],
                    "figures": figures})
    return out


def collision_effect(cmp: Comparisons, alpha: float = 0.05) -> dict[str, Any] | None:
    """``unigram_dedup`` − ``unigram`` (all, cold, tail; with and without history), Holm-adjusted
    as a family of its own: what resolving the SID collisions changes."""
    specs = []
    for h in sorted({k[2] for k in cmp.keys}, reverse=True):
        ref = next((k for k in sorted(cmp.keys) if k[0] == "unigram_dedup" and k[2] == h), None)
        base = _reference(cmp.keys, "unigram_dedup", h)
        if ref is not None and base is not None:
            specs += [(0, "test", ref, base, sl) for sl in ("all", "cold", "tail")]
    if not specs:
        return None
    tested = [{k: v for k, v in e.items() if k not in ("group", "role")} for e in _tested(cmp, specs, alpha)]
    return {"reference": "unigram_dedup", "compared_with": "unigram", "comparisons": tested,
            "figures": "; ".join(f"{'with' if e['history'] else 'without'} history, " + _fmt(e) for e in tested)}


def table_rows(summary: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for s in summary:
        c = next((c for c in s["vs_hash"] if c["hash_table_size"] == s["table_size"]), None) or \
            (s["vs_hash"][-1] if s["vs_hash"] else None)
        rows.append({"slice": s["slice"], "history": s["history"], "representation": s["representation"],
                     "table_size": s["table_size"], "rows": s["rows"], "params": s["params"],
                     "auc": round(s["auc"], 4), "auc_user": round(s["auc_user"], 4), "auc_user_ci95": ""
                     if s["auc_user_ci95"] is None else f"[{s['auc_user_ci95'][0]:.4f}, {s['auc_user_ci95'][1]:.4f}]",
                     "ndcg@10": round(s["ndcg@10"], 4), "recall@10": round(s["recall@10"], 4),
                     "n_events": s["n_events"], "vs_hash_T": "" if c is None else c["hash_table_size"],
                     "delta_auc_user": "" if c is None else round(c["delta"], 4),
                     "delta_ci95": "" if c is None or c["ci95"] is None else f"[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]",
                     "p_permutation": "" if c is None else _p(c["p_permutation"]),
                     "p_seeds": "" if c is None else _p(c.get("p_seeds")),
                     "p_bootstrap": "" if c is None else _p(c["p_bootstrap"], c["n_boot"]),
                     "p_ttest_seeds": "" if c is None else _p(c["p_ttest_seeds"])})
    return rows


def markdown(doc: dict[str, Any], rows: list[dict]) -> str:
    p = doc["protocol"]
    lines = [f"# SID ranking study: {doc.get('dataset')}", "",
             f"Split {p['split']}; {p['train_events']} training events; test lists: {p['test_events']} "
             f"({p['cold_events']} cold, {p['tail_events']} tail); {p['eval_lists']}. Seeds {p['grid']['seeds']}. "
             f"Wall time {doc['wall_time_s']} s for the whole grid (this invocation "
             f"{doc.get('invocation_wall_s', doc['wall_time_s'])} s, {doc.get('reused_cells', 0)} cells reused), "
             f"torch threads {doc['hardware'].get('torch_threads')}, {doc['hardware'].get('cpus')} CPUs.", "",
             f"Statistics: {p.get('statistics', '')}", "", "## Claims", ""]
    lines += [f"- **{c['verdict']}**: {c['claim']}. {c['figures']}" for c in doc["claims"]]
    col = doc.get("collisions") or {}
    if col:
        lines += ["", "## SID collisions", ""]
        if col.get("sids"):
            s = col["sids"]
            lines.append(f"{s['items_in_collision']} of {s['items']} items ({100 * s['collision_share']:.1f}%) share "
                         f"their SID with another item ({s['unique_ids']} distinct SIDs, largest group {s['largest_group']}).")
        if col.get("figures"):
            lines.append(f"Collision-free reference {col['reference']} − {col['compared_with']} (Holm within these): "
                         f"{col['figures']}")
    lines += ["", "## Results (mean over seeds; Δ = per-list AUC vs hash at the same table size, one-size "
              "representations vs the largest; p-values unadjusted)", ""]
    keys = list(rows[0]) if rows else []
    lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], out: Path) -> None:
    out = Path(out)
    artifacts.write_json(out / "results.json", doc)
    rows = table_rows(doc["summary"])
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    artifacts.write_text(out / "results.csv", buf.getvalue())
    artifacts.write_text(out / "results.md", markdown(doc, rows))
    plots.auc_bars(doc["summary"], out / "auc_by_representation.png")
    plots.delta_vs_size(doc["summary"], out / "delta_auc_vs_table_size.png")
