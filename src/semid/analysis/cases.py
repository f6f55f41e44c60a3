"""Case studies: a seeded sample of users, their histories and each model's top k through the
serving API (:mod:`semid.serve.api`), every item marked with the Semantic-ID prefix it shares with
the target, next to the rank ``semid evaluate`` stored for that user."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from semid.analysis.failures import shared_prefix
from semid.core.log import log
from semid.serve.api import LoadedRun, Query


def sample_users(split: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """``n`` rows of the split drawn with ``seed`` (all of them when it holds fewer), by user id."""
    return split.sample(min(n, split.height), seed=seed).sort("user_id")


def studies(loaded: LoadedRun, users: pl.DataFrame, ranks: dict[str, dict[int, int | None]], k: int,
            exclude_history: bool) -> list[dict[str, Any]]:
    """One record per sampled user: history, target, and per model its list (``hit``, ``shared``
    prefix length per item) with ``evaluated_rank``, the rank in ranks.parquet (None = not in its list)."""
    cat = loaded.catalogue
    histories = [list(h) for h in users["history"].to_list()]
    targets = users["target"].to_list()
    queries = [Query(m, h, k, exclude_history) for m in ranks for h in histories]
    answers = iter(loaded.answer(queries))  # one ranker call per model for the whole sample
    lists: dict[str, list[list[dict[str, Any]]]] = {m: [next(answers)["items"] for _ in histories] for m in ranks}
    out = []
    for i, (user, target) in enumerate(zip(users["user_id"].to_list(), targets)):
        record: dict[str, Any] = {"user_id": int(user), "history": [cat.describe(h) for h in histories[i]],
                                  "target": cat.describe(target) | {"popularity": int(cat.popularity[target])}, "models": {}}
        for m in ranks:
            items = lists[m][i]
            ids = np.asarray([it["item_id"] for it in items], dtype=np.int64)
            shared = shared_prefix(cat.codes[ids], np.broadcast_to(cat.codes[target], (len(ids), cat.codes.shape[1])))
            for it, s in zip(items, shared):
                it |= {"hit": it["item_id"] == target, "shared": int(s)}
            listed = next((it["rank"] for it in items if it["hit"]), None)
            evaluated = ranks[m].get(int(user))
            consistent = listed == (evaluated if evaluated is not None and evaluated <= k else None)
            if not consistent:
                log.warning("analyze: user %d: %s lists the target at %s but ranks.parquet says %s", user, m, listed, evaluated)
            record["models"][m] = {"items": items, "evaluated_rank": evaluated, "consistent": consistent}
        out.append(record)
    return out


def _sid(sid: list[int], shared: int) -> str:
    """``12-40-7-0`` with the first ``shared`` codes in bold."""
    head, tail = "-".join(map(str, sid[:shared])), "-".join(map(str, sid[shared:]))
    return f"**{head}**" + (f"-{tail}" if tail else "") if shared else tail


def _title(text: str, width: int = 60) -> str:
    text = text.replace("|", "/").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def markdown(cases: list[dict[str, Any]], k: int, protocol: str) -> str:
    models = list(cases[0]["models"]) if cases else []
    lines = ["# Case studies", "",
             f"{len(cases)} sampled users; each model's top {k} ({protocol}) from the serving API. ✅ marks the target; "
             "the **bold** codes are the Semantic-ID prefix the item shares with the target; 'rank in ranks.parquet' "
             "is what `semid evaluate` stored for that user.", ""]
    for c in cases:
        t = c["target"]
        lines += [f"## User {c['user_id']}", "",
                  f"**Target**: {_title(t['title'], 90)} `{'-'.join(map(str, t['sid']))}` "
                  f"(item {t['item_id']}, {t['popularity']} training interactions)", "",
                  f"History ({len(c['history'])} items, oldest first):", ""]
        lines += [f"{j + 1}. {_title(h['title'], 90)} `{'-'.join(map(str, h['sid']))}`" for j, h in enumerate(c["history"])]
        lines += ["", "| rank | " + " | ".join(models) + " |", "|---:|" + "---|" * len(models)]
        for r in range(k):
            cells = []
            for m in models:
                items = c["models"][m]["items"]
                it = items[r] if r < len(items) else None
                cells.append("" if it is None else f"{'✅ ' if it['hit'] else ''}{_sid(it['sid'], it['shared'])} {_title(it['title'])}")
            lines.append(f"| {r + 1} | " + " | ".join(cells) + " |")
        lines.append("| rank in ranks.parquet | " + " | ".join(str(c["models"][m]["evaluated_rank"] or "–") for m in models) + " |")
        lines.append("")
    return "\n".join(lines)
