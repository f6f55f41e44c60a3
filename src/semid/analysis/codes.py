"""What the codes mean, beyond ``semid ids analyze``: that report lists first-level codes only
and colours its t-SNE map by first code; this adds the largest second-level prefixes (same
measure: :func:`semid.ids.analysis.code_meanings`) and the same kind of map coloured by category."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from semid.core.figures import pyplot, save
from semid.ids.analysis import code_meanings, tsne_map


def prefix_meanings(x: np.ndarray, codes: np.ndarray, level: int, titles: list[str],
                    categories: list[list[str] | None] | None, top: int, top_words: int) -> list[dict[str, Any]]:
    """The ``top`` largest groups of items sharing their first ``level`` codes: items, distinctive
    title words, commonest categories and the titles nearest the group's centroid."""
    prefixes, group = np.unique(codes[:, :level], axis=0, return_inverse=True)
    rows = code_meanings(x, group.reshape(-1), titles, categories, top_words)[:top]
    return [{"prefix": prefixes[r.pop("code")].tolist(), **r} for r in rows]


def category_labels(categories: list[list[str] | None], top: int = 8) -> list[str]:
    """Each item's top-level category; those outside the ``top`` commonest become ``other``."""
    first = [c[0] if c else "(none)" for c in categories]
    keep = {name for name, _ in Counter(first).most_common(top)}
    return [c if c in keep else "other" for c in first]


def plot_map(xy: np.ndarray, cats: list[str], first: np.ndarray, path: Path) -> None:
    """The t-SNE map twice: coloured by top-level category (legend) and by first code (mod 20)."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6))
    names = [n for n, _ in Counter(cats).most_common()]
    cmap = plt.get_cmap("tab10")
    arr = np.asarray(cats)
    for i, name in enumerate(names):
        on = arr == name
        a.scatter(xy[on, 0], xy[on, 1], s=3, linewidths=0, color=cmap(i % 10), label=f"{name} ({on.sum()})")
    a.legend(fontsize=8, markerscale=4, loc="best")
    a.set_title("coloured by top-level category")
    b.scatter(xy[:, 0], xy[:, 1], c=first % 20, cmap="tab20", s=3, linewidths=0)
    b.set_title("coloured by first code (mod 20)")
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"t-SNE of {len(xy):,} items' embeddings")
    save(fig, path)


def analyze(x: np.ndarray, codes: np.ndarray, titles: list[str], categories: list[list[str] | None] | None,
            *, top: int, top_words: int, map_items: int, seed: int, map_path: Path) -> dict[str, Any]:
    """Meanings of the largest first- and second-level codes, and the category map when there are
    categories and ``map_items`` > 0 (returns ``map`` = the PNG's name, or None)."""
    out: dict[str, Any] = {"levels": {str(level): prefix_meanings(x, codes, level, titles, categories, top, top_words)
                                      for level in (1, 2) if level < codes.shape[1]}}
    out["map"] = None
    if categories is not None and map_items > 0 and len(x) >= 10:
        rows, xy = tsne_map(x, map_items, seed)
        cats = category_labels(categories)
        plot_map(xy, [cats[i] for i in rows], codes[rows, 0], map_path)
        out["map"], out["map_items"] = map_path.name, len(rows)
    return out
