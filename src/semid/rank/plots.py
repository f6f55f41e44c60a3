"""Plots of the ranking study (matplotlib, Agg backend).

- ``auc_by_representation.png``: test AUC overall and on cold-start items for each
  representation, with and without history (largest table size of swept methods; error bars:
  95% CI over seeds).
- ``delta_auc_vs_table_size.png``: per-list AUC change versus random hashing (the tested Δ)
  against table size, one line per representation (the shape of the paper's figures), overall
  and cold, per history.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semid.core.figures import pyplot, save

COLORS = {"hash": "#777777", "dense": "#8c564b", "unigram": "#1f77b4", "unigram_dedup": "#17becf",
          "bigram": "#ff7f0e", "prefix": "#2ca02c", "spm": "#d62728"}
ONE_SIZE = ("unigram", "unigram_dedup", "dense")


def auc_bars(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    hists = sorted({s["history"] for s in summary}, reverse=True)
    reps = [r for r in COLORS if any(s["representation"] == r for s in summary)]
    fig, axes = plt.subplots(1, len(hists), figsize=(6 * len(hists), 4), squeeze=False)
    for ax, hist in zip(axes[0], hists, strict=True):
        for j, sl in enumerate(("all", "cold")):
            vals, errs = [], []
            for rep in reps:
                rows = [s for s in summary if s["representation"] == rep and s["history"] == hist and s["slice"] == sl]
                best = max(rows, key=lambda s: s["table_size"]) if rows else None
                ok = best is not None and best["auc"] == best["auc"]
                vals.append(best["auc"] if ok else np.nan)
                errs.append(best["auc"] - best["auc_ci95"][0] if ok and best["auc_ci95"] else 0.0)
            x = np.arange(len(reps)) + (j - 0.5) * 0.38
            ax.bar(x, vals, 0.38, yerr=errs, label="overall" if sl == "all" else "cold-start",
                   color=[COLORS[r] for r in reps], alpha=1.0 if sl == "all" else 0.5, capsize=2)
        ax.set_xticks(np.arange(len(reps)), reps)
        ax.set_ylim(0.4, 1.0)
        ax.axhline(0.5, color="k", lw=0.5)
        ax.set_title(f"test AUC, {'with' if hist else 'without'} history (solid: overall, light: cold)")
        ax.set_ylabel("AUC")
    save(fig, path)


def delta_vs_size(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    hists = sorted({s["history"] for s in summary}, reverse=True)
    fig, axes = plt.subplots(len(hists), 2, figsize=(11, 3.6 * len(hists)), squeeze=False)
    for i, hist in enumerate(hists):
        for j, sl in enumerate(("all", "cold")):
            ax = axes[i][j]
            for rep, color in COLORS.items():
                if rep == "hash":
                    continue
                pts = []
                for s in summary:
                    if s["representation"] != rep or s["history"] != hist or s["slice"] != sl:
                        continue
                    for c in s["vs_hash"]:
                        if rep in ONE_SIZE or c["hash_table_size"] == s["table_size"]:
                            pts.append((c["hash_table_size"], c["delta"]))
                if not pts:
                    continue
                pts.sort()
                x, y = [p[0] for p in pts], [100 * p[1] for p in pts]
                style = "--" if rep in ONE_SIZE else "-o"
                ax.plot(x, y, style, color=color, label=rep, ms=4)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("table size T (rows of the hash table; n-gram budget; SPM vocabulary)")
            ax.set_ylabel("Δ per-list AUC vs hashing at T (%)")
            ax.set_title(f"{'overall' if sl == 'all' else 'cold-start'}, {'with' if hist else 'without'} history")
            ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)
