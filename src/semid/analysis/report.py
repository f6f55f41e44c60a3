"""Markdown and plots of ``semid analyze``'s failure analysis and code meanings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semid.core.figures import pyplot, save

SECTIONS = {"by_popularity": ("target popularity", "popularity"), "by_history_length": ("history length", "history_length"),
            "by_cold": ("cold / warm target", "cold")}


def _share(n: int, total: int) -> str:
    return f"{n:,} ({n / total:.1%})" if total else str(n)


def failures_markdown(f: dict[str, Any], protocol: str) -> str:
    k, models = f["k"], f["models"]
    lines = ["# Failure analysis", "", f"All {f['users']:,} users of the split; hit = target in the top {k} as `semid evaluate` "
             f"ranked it ({protocol}), read from each model's ranks.parquet.", ""]
    o = f.get("outcomes")
    if o:
        a, b, n = o["a"], o["b"], f["users"]
        lines += [f"## {a} (A) against {b} (B)", "", f"| | {b} hit | {b} miss |", "|---|---:|---:|",
                  f"| **{a} hit** | {_share(o['both_hit'], n)} | {_share(o['a_hit_b_miss'], n)} |",
                  f"| **{a} miss** | {_share(o['a_miss_b_hit'], n)} | {_share(o['both_miss'], n)} |", ""]
    dist = f["top1_shared_prefix_on_misses"]
    width = max(len(d["shared"]) for d in dist.values())
    lines += ["## How close is a miss?", "", "Over each model's misses: leading Semantic-ID codes its top-1 item shares with "
              "the target (0 = a different first code).", "",
              "| model | misses | " + " | ".join(f"{i} shared" for i in range(width)) + " | empty list |",
              "|---|---:|" + "---:|" * (width + 1)]
    for m, d in dist.items():
        lines.append(f"| {m} | {d['misses']:,} | " + " | ".join(_share(c, d["misses"]) for c in d["shared"])
                     + f" | {d['no_prediction']} |")
    lines += ["", "## Overall", "", _bucket_table(f["overall"], models, k), ""]
    for key, (title, rule) in SECTIONS.items():
        lines += [f"## Recall@{k} and NDCG@{k} by {title}", "", f"Rule: {f['rules'][rule]}.", "", _bucket_table(f[key], models, k), ""]
    lines += ["![failures](failures.png)", ""]
    return "\n".join(lines)


def _bucket_table(rows: list[dict[str, Any]], models: list[str], k: int) -> str:
    head = "| bucket | users | " + " | ".join(f"R@{k} {m}" for m in models) + " | " + " | ".join(f"N@{k} {m}" for m in models) + " |"
    lines = [head, "|---|---:|" + "---:|" * (2 * len(models))]
    for r in rows:
        vals = [r["models"][m][f"{metric}@{k}"] for metric in ("recall", "ndcg") for m in models]
        lines.append(f"| {r['bucket']} | {r['users']:,} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    return "\n".join(lines)


def plot_failures(f: dict[str, Any], path: Path) -> None:
    """Four panels: each model's shared-prefix distribution on its misses, then Recall@k by bucket."""
    plt = pyplot()
    models, k = f["models"], f["k"]
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    width = 0.8 / len(models)
    dist = f["top1_shared_prefix_on_misses"]
    for j, m in enumerate(models):
        shared = np.asarray(dist[m]["shared"], dtype=float)
        axes[0].bar(np.arange(len(shared)) + j * width, shared / max(dist[m]["misses"], 1), width, label=m)
    axes[0].set(title="misses: codes the top-1 shares with the target", xlabel="shared leading codes", ylabel="share of misses")
    axes[0].legend(fontsize=8)
    for ax, (key, (title, _)) in zip(axes[1:], SECTIONS.items()):
        rows = f[key]
        for j, m in enumerate(models):
            ax.bar(np.arange(len(rows)) + j * width, [r["models"][m][f"recall@{k}"] for r in rows], width, label=m)
        ax.set_xticks(np.arange(len(rows)) + width * (len(models) - 1) / 2, [f"{r['bucket']}\n({r['users']:,})" for r in rows], fontsize=7)
        ax.set(title=f"Recall@{k} by {title}")
    save(fig, path)


def codes_markdown(c: dict[str, Any], ids_name: str, top: int) -> str:
    lines = ["# What the codes mean", "",
             f"Semantic IDs `{ids_name}`. The {top} largest groups of items sharing their first code, then their first two "
             "codes: distinctive title words (share in the group × log lift over the catalogue, as `semid ids analyze`), "
             f"commonest categories and the title nearest the group's centroid. `semid ids analyze` (ids/{ids_name}/report.md) "
             "has the rest: usage, collisions, coherence by prefix, purity.", ""]
    for level, rows in c["levels"].items():
        lines += [f"## Prefixes of {level} code{'s' if level != '1' else ''}", "",
                  "| prefix | items | words | categories | example |", "|---|---:|---|---|---|"]
        for r in rows:
            cats = "; ".join(f"{x['category']} ({x['share']:.0%})" for x in r.get("categories", [])) or "–"
            example = (r["examples"][0] if r["examples"] else "").replace("|", "/")[:70]
            lines.append(f"| {'-'.join(map(str, r['prefix']))} | {r['items']:,} | {', '.join(r['words'])} | {cats} | {example} |")
        lines.append("")
    if c.get("map"):
        lines += ["## Map", "", f"t-SNE of {c['map_items']:,} items, coloured by top-level category and by first code:", "",
                  f"![map]({c['map']})", ""]
    return "\n".join(lines)
