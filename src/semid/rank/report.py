"""Summary, paired tests, claims, tables and plots of the ranking study.

- Summary rows: one per (representation, table size, history, slice): means over seeds with a
  95% t interval, and paired comparisons with ``hash`` (at the same T for swept methods, at
  every T for unigram and dense): ΔAUC paired by seed (t-test) and a paired bootstrap over test
  events of the per-list AUC averaged over seeds.
- Claims: the paper's three findings, each "confirmed" or "not confirmed" with its figures.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from semid.core import artifacts
from semid.rank import plots

METRICS = ("auc", "auc_user", "ndcg@10", "recall@10")
SID = ("unigram", "bigram", "prefix", "spm")


def ci95(values: list[float]) -> list[float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return [float(v.mean()), float(v.mean())]
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def paired(rep: dict[int, float], base: dict[int, float], ev_rep: np.ndarray, ev_base: np.ndarray,
           n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    seeds = sorted(set(rep) & set(base))
    d = np.array([rep[s] - base[s] for s in seeds])
    p_t = float(stats.ttest_rel([rep[s] for s in seeds], [base[s] for s in seeds]).pvalue) \
        if len(seeds) > 1 and d.std() > 0 else None
    diff = ev_rep - ev_base
    out = {"delta_auc": float(d.mean()), "delta_auc_ci95": ci95(list(d)), "p_ttest": p_t,
           "delta_auc_user": float(diff.mean()) if len(diff) else float("nan")}
    if n_boot and len(diff):
        idx = rng.integers(0, len(diff), (n_boot, len(diff)))
        boot = diff[idx].mean(1)
        out["delta_auc_user_ci95"] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
        out["p_bootstrap"] = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))
        out["n_boot"] = n_boot
    return out


def summarize(records: list[dict], events: dict[tuple, np.ndarray], slices: dict[str, np.ndarray],
              n_boot: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["representation"], r["table_size"], r["history"], r["slice"])].append(r)
    hash_sizes = sorted({k[1] for k in groups if k[0] == "hash"})

    def seed_mean(rep, size, hist, sl):
        arrs = [events[(rep, size, hist, r["seed"])][slices[sl]] for r in groups[(rep, size, hist, sl)]]
        return np.mean(arrs, 0)

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
            for hs in ([size] if size in hash_sizes and rep not in ("unigram", "dense") else hash_sizes):
                base = groups.get(("hash", hs, hist, sl))
                if not base:
                    continue
                cmp = paired({r["seed"]: r["auc"] for r in rs}, {r["seed"]: r["auc"] for r in base},
                             seed_mean(rep, size, hist, sl), seed_mean("hash", hs, hist, sl), n_boot, rng)
                row["vs_hash"].append({"hash_table_size": hs, **cmp})
        out.append(row)
    return out


def _sig(c: dict) -> bool:
    lo = c.get("delta_auc_user_ci95", c["delta_auc_ci95"])[0]
    return c["delta_auc"] > 0 and lo > 0


def _cmps(summary, reps, hist, sl):
    return [(s["representation"], s["table_size"], c) for s in summary if s["representation"] in reps
            and s["history"] == hist and s["slice"] == sl for c in s["vs_hash"]]


def _fmt(items) -> str:
    parts = []
    for rep, size, c in items:
        p = c.get("p_bootstrap")
        shown = "" if p is None else f" (p<{1 / c['n_boot']:.3g})" if p == 0 else f" (p={p:.3g})"
        parts.append(f"{rep}@{size} vs hash@{c['hash_table_size']}: ΔAUC {c['delta_auc']:+.4f}{shown}")
    return "; ".join(parts)


def claims(summary: list[dict]) -> list[dict[str, Any]]:
    out = []
    hist = any(s["history"] for s in summary)
    cold = _cmps(summary, SID, hist, "cold")
    ok = bool(cold) and all(_sig(c) for _, _, c in cold)
    won = sum(_sig(c) for _, _, c in cold)
    out.append({"claim": "Semantic IDs beat random hashing on cold-start items", "history": hist,
                "verdict": "confirmed" if ok else "not confirmed",
                "figures": f"{won}/{len(cold)} SID comparisons significantly above hash on the cold slice: "
                           + _fmt(cold)})
    ng = _cmps(summary, ("unigram", "bigram"), True, "all")
    ok = bool(ng) and all(_sig(c) for _, _, c in ng)
    no = _cmps(summary, ("unigram", "bigram"), False, "all")
    out.append({"claim": "With history, unigram/bigram SIDs beat random hashing overall",
                "verdict": "confirmed" if ok else "not confirmed",
                "figures": f"{sum(_sig(c) for *_, c in ng)}/{len(ng)} significant with history: {_fmt(ng)}. "
                           f"Without history: {_fmt(no) or 'not run'}"})
    rows = [s for s in summary if s["history"] == hist and s["slice"] in ("all", "cold")
            and s["representation"] in ("bigram", "prefix", "spm")]
    parts, ok = [], bool(rows)
    for sl in ("all", "cold"):
        sub = [s for s in rows if s["slice"] == sl]
        if not sub:
            ok = False
            continue
        top = max(s["table_size"] for s in sub)
        at = sorted((s for s in sub if s["table_size"] == top), key=lambda s: -s["auc"])
        uni = [s for s in summary if s["representation"] == "unigram" and s["history"] == hist and s["slice"] == sl]
        best = max(at + uni, key=lambda s: s["auc"])
        ok = ok and best["representation"] == "spm"
        parts.append(f"{sl} @T={top}: " + ", ".join(f"{s['representation']} {s['auc']:.4f}" for s in at + uni))
    out.append({"claim": "SPM-SID is best at large table sizes", "history": hist,
                "verdict": "confirmed" if ok else "not confirmed", "figures": "; ".join(parts)})
    return out


def table_rows(summary: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for s in summary:
        c = next((c for c in s["vs_hash"] if c["hash_table_size"] == s["table_size"]), None) or \
            (s["vs_hash"][-1] if s["vs_hash"] else None)
        rows.append({"slice": s["slice"], "history": s["history"], "representation": s["representation"],
                     "table_size": s["table_size"], "rows": s["rows"], "params": s["params"],
                     "auc": round(s["auc"], 4), "auc_ci95": "" if s["auc_ci95"] is None else
                     f"[{s['auc_ci95'][0]:.4f}, {s['auc_ci95'][1]:.4f}]",
                     "auc_user": round(s["auc_user"], 4), "ndcg@10": round(s["ndcg@10"], 4),
                     "recall@10": round(s["recall@10"], 4), "n_events": s["n_events"],
                     "vs_hash_T": "" if c is None else c["hash_table_size"],
                     "delta_auc": "" if c is None else round(c["delta_auc"], 4),
                     "p_bootstrap": "" if c is None or c.get("p_bootstrap") is None else round(c["p_bootstrap"], 4),
                     "p_ttest": "" if c is None or c["p_ttest"] is None else round(c["p_ttest"], 4)})
    return rows


def markdown(doc: dict[str, Any], rows: list[dict]) -> str:
    p = doc["protocol"]
    lines = [f"# SID ranking study: {doc.get('dataset')}", "",
             f"Split {p['split']}; {p['train_events']} training events; test lists: {p['test_events']} "
             f"({p['cold_events']} cold, {p['tail_events']} tail); {p['eval_lists']}. Seeds {p['grid']['seeds']}. "
             f"Wall time {doc['wall_time_s']} s for the whole grid (this invocation "
             f"{doc.get('invocation_wall_s', doc['wall_time_s'])} s, {doc.get('reused_cells', 0)} cells reused), "
             f"torch threads {doc['hardware'].get('torch_threads')}, {doc['hardware'].get('cpus')} CPUs.", "",
             "## Claims", ""]
    lines += [f"- **{c['verdict']}**: {c['claim']}. {c['figures']}" for c in doc["claims"]]
    lines += ["", "## Results (mean over seeds; ΔAUC vs hash at the same table size, unigram/dense vs the largest)",
              ""]
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
