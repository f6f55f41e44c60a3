"""Plots and the Markdown report of ``semid ids analyze`` (figures from :mod:`semid.ids.analysis`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semid.core.figures import pyplot, save


def plot_curve(curve: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    steps = [p["step"] for p in curve]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key in ("loss", "recon", "codebook", "commit"):
        a.plot(steps, [p[key] for p in curve], label=key)
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_title("RQ-VAE losses")
    a.legend()
    levels = sorted({k for p in curve for k in p if k.startswith("used_l")})
    for key in levels:
        pts = [(p["step"], p[key]) for p in curve if key in p]
        b.plot([s for s, _ in pts], [v for _, v in pts], label=f"level {key[6:]}")
    b.set_ylim(0, 1.05)
    b.set_xlabel("step")
    b.set_title("share of codes used (per reset window)")
    if levels:
        b.legend()
    save(fig, path)


def plot_usage(usage: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(usage), figsize=(4 * len(usage), 3.2), squeeze=False)
    for ax, lv in zip(axes[0], usage, strict=True):
        counts = np.asarray(lv["counts"])
        ax.bar(np.arange(len(counts)), np.sort(counts)[::-1], width=1.0)
        ax.set_title(f"level {lv['level']}: {lv['used_share']:.0%} used, ppl {lv['perplexity']:.0f}")
        ax.set_xlabel("code (sorted by items)")
        ax.set_ylabel("items")
    save(fig, path)


def plot_coherence(coh: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = coh["prefix"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    lens = [r["prefix_len"] for r in rows]
    ax.plot(lens, [r["mean_cosine"] for r in rows], "o-", label="pairs sharing the prefix")
    ax.axhline(coh["random_pairs"], color="gray", ls="--", label="all pairs (random)")
    ref = coh["singh_et_al"][: len(lens)]
    ax.plot(lens[: len(ref)], ref, "x:", color="tab:red", label="Singh et al. 2024 (videos)")
    ax.set_xticks(lens)
    ax.set_xlabel("prefix length")
    ax.set_ylabel("mean cosine similarity")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    save(fig, path)


def plot_tsne(xy: np.ndarray, first: np.ndarray, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.scatter(xy[:, 0], xy[:, 1], c=first % 20, cmap="tab20", s=3, linewidths=0)
    ax.set_title(f"t-SNE of {len(xy):,} items, coloured by first code (mod 20)")
    ax.set_xticks([])
    ax.set_yticks([])
    save(fig, path)


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(report: dict[str, Any], title: str) -> str:
    lines = [f"# Semantic IDs: {title}", "",
             f"{report['items']:,} items, {report['levels']} levels × {report['codebook_size']} codes.", ""]
    rec = report["reconstruction"]
    if rec:
        lines += ["## Reconstruction", "", "| mean cosine | MSE (per element) | squared error per item |", "|---:|---:|---:|",
                  f"| {_f(rec['mean_cosine'])} | {rec['mse']:.3g} | {_f(rec['sq_error_per_item'])} |", ""]
    lines += ["## Code usage", "", "| level | used | share used | entropy (bits) | max | perplexity | largest code |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for u in report["usage"]:
        lines.append(f"| {u['level']} | {u['used']} | {u['used_share']:.1%} | {u['entropy_bits']:.2f} | "
                     f"{u['max_entropy_bits']:.2f} | {u['perplexity']:.1f} | {u['largest_code_share']:.2%} |")
    c = report["collisions"]
    moved = c.get("reencoded_items", 0)
    after = (f"{moved:,} of them were re-encoded to their nearest free code, so IDs stay at {report['levels']} codes; "
             f"every ID is unique: {c['unique_after_dedup']}." if moved else
             f"After the extra code every ID is unique: {c['unique_after_dedup']} (largest extra code {c['max_dedup']}).")
    lines += ["", "![code usage](code_usage.png)", "", "## Collisions (before the extra code or re-encoding)", "",
              f"{c['items_in_collision']:,} items ({c['collision_share']:.2%}) share all {report['levels']} codes with "
              f"another item, in {c['groups_with_collision']:,} groups; the largest group has {c['largest_group']} items. "
              + after, "",
              "## Semantic coherence", "", "| prefix length | mean cosine of pairs | pairs | groups | Singh et al. |",
              "|---:|---:|---:|---:|---:|"]
    coh = report["coherence"]
    for r in coh["prefix"]:
        ref = coh["singh_et_al"][r["prefix_len"] - 1] if r["prefix_len"] <= len(coh["singh_et_al"]) else None
        lines.append(f"| {r['prefix_len']} | {_f(r['mean_cosine'])} | {r['pairs']:,} | {r['groups']:,} | {_f(ref, 2)} |")
    lines += [f"| all pairs (random) | {_f(coh['random_pairs'])} | | | |", "", "![coherence](coherence.png)", ""]
    nxt = report.get("next_item")
    if nxt:
        lines += ["## Next-item agreement", "",
                  "How often an item and the item its user took next share a prefix of the IDs, against the share if the "
                  "next item were drawn independently with the same frequencies (lift = share / chance). Train: every "
                  "consecutive pair of the training sequences; validation: each user's last history item → validation "
                  "target.", "", "| prefix length | " + " | ".join(f"{s} share | {s} chance | {s} lift" for s in nxt) + " |",
                  "|---:|" + "---:|---:|---:|" * len(nxt)]
        for i in range(report["levels"]):
            cells = []
            for part in nxt.values():
                r = part["prefix"][i] if i < len(part["prefix"]) else None
                cells += [f"{r['share']:.2%}", f"{r['expected']:.2%}", f"{r['lift']:.1f}"] if r else ["–"] * 3
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        lines += ["", "Pairs: " + ", ".join(f"{s} {part['pairs']:,}" for s, part in nxt.items()) + ".", ""]
    pur = report.get("category_purity")
    if pur:
        lines += ["## Category purity", "",
                  f"{pur['items_with_categories']:,} items with categories ({pur['distinct_top']} top-level, "
                  f"{pur['distinct_leaf']} leaf). Purity = share of items in their group's commonest category; "
                  "'shuffled' keeps the groups and shuffles the categories.", "",
                  "| prefix length | top-level | shuffled | leaf | shuffled |", "|---:|---:|---:|---:|---:|"]
        for r in pur["prefix"]:
            lines.append(f"| {r['prefix_len']} | {r['top_purity']:.3f} | {r['top_purity_shuffled']:.3f} | "
                         f"{r['leaf_purity']:.3f} | {r['leaf_purity_shuffled']:.3f} |")
        lines.append("")
    if report.get("tsne_items"):
        lines += ["## Map", "", "![t-SNE](tsne.png)", ""]
    meanings = report.get("code_meanings") or []
    if meanings:
        lines += ["## What first-level codes mean (20 largest)", "", "| code | items | distinctive words | top category | example |",
                  "|---:|---:|---|---|---|"]
        for m in meanings[:20]:
            cat = m.get("categories") or [{"category": "–", "share": 0.0}]
            ex = (m["examples"][0] if m["examples"] else "").replace("|", "/")[:70]
            lines.append(f"| {m['code']} | {m['items']} | {', '.join(m['words'])} | "
                         f"{cat[0]['category']} ({cat[0]['share']:.0%}) | {ex} |")
        lines.append("")
    return "\n".join(lines)
