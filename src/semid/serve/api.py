"""A finished run, loaded once, that answers questions: ``semid.load(RUN_DIR)``.

    run = semid.load("runs/beauty")
    run.recommend(["B004756YJA", "B0020YLEYK"], k=10)            # item IDs or ASINs, most recent last
    run.recommend([0, 2], model="sasrec-ce")
    run.item("B004756YJA"); run.search("nail polish"); run.items_under([12, 200])
    run.assign(["Rose hand cream with shea butter, 50 ml"])      # a new product's Semantic ID

Every model folder the run holds is loaded through the model registry once its check passes
(:func:`semid.models.stage.trained_folder`: the files are what training wrote and the data and IDs
it was trained on are the run's current ones); a folder that fails is listed in ``unavailable``
with the reason. Each listed item has its rank and, where the model's ranker gives one, its score
(``score_kind`` says what it is: a SASRec logit, TIGER's log-probability of the ID, …).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semid.core.errors import SemidError
from semid.core.run import MODEL_CONFIG, RunFolder
from semid.core.threads import threads
from semid.generative.folder import resolve_ids
from semid.models import stage as model_stage
from semid.models.common import Ranker, RankOptions
from semid.serve.catalogue import Catalogue, InputError, NotFound
from semid.serve.coldstart import ColdStart

MAX_HISTORY = 200  # items of one history (models read at most their last max_items)


@dataclass(frozen=True)
class Model:
    name: str
    kind: str
    rank: Ranker
    meta: dict[str, Any]  # config.json
    needs_ids: bool

    @property
    def score_kind(self) -> str | None:
        return getattr(self.rank, "score_kind", None)

    def summary(self) -> dict[str, Any]:
        training = self.meta.get("training") or {}
        return {"name": self.name, "kind": self.kind, "params": self.meta.get("params"), "semantic_ids": self.needs_ids,
                "score_kind": self.score_kind,
                "ids": (self.meta.get("config") or {}).get("ids_folder"), "best_val_recall@10": training.get("best_val_recall@10")}


@dataclass(frozen=True)
class Query:
    """One validated recommendation request."""

    model: str
    history: list[int]
    k: int
    exclude_history: bool = True


class LoadedRun:
    """The catalogue, its Semantic IDs and every usable model of one run folder."""

    def __init__(self, run_dir: Path | str | RunFolder, *, models: list[str] | None = None, depth: int = 20,
                 device: str = "cpu", ids: str | None = None, threads: int | None = None):
        self.run = RunFolder(run_dir)
        self.depth, self.device, self.threads = depth, device, threads
        names = models if models is not None else sorted(
            p.name for p in (self.run.models_root.iterdir() if self.run.models_root.is_dir() else []) if (p / MODEL_CONFIG).is_file())
        self.models: dict[str, Model] = {}
        self.unavailable: dict[str, str] = {}
        opts = RankOptions(top_k=depth, beam_size=depth, batch_users=256, device=device)
        for name in names:
            try:
                spec, meta = model_stage.trained_folder(self.run, name)
                rank, _ = spec.ranker(self.run.model_dir(name), spec.config, opts)
            except SemidError as exc:
                self.unavailable[name] = str(exc)
                continue
            self.models[name] = Model(name, spec.kind, rank, meta, spec.needs_ids)
        if not self.models:
            raise SemidError(f"{self.run} holds no usable model ({'; '.join(f'{k}: {v}' for k, v in self.unavailable.items()) or 'none trained'}): "
                             f"train one with `semid train <kind> --out {self.run}` or `semid run`")
        # the IDs shown are those most models on Semantic IDs were trained on (else the run's only ones)
        trained_on = Counter(m.summary()["ids"] for m in self.models.values() if m.needs_ids).most_common(1)
        self.catalogue = Catalogue(self.run, resolve_ids(self.run, ids or (trained_on[0][0] if trained_on else None)))
        self._lock = threading.Lock()  # one model call at a time: the cores are shared by every request
        self._cold: ColdStart | None = None

    # ---- models ------------------------------------------------------------------------------
    def ranked_models(self) -> list[Model]:
        """Models on Semantic IDs first, then by best validation Recall@10 (the page's order)."""
        return sorted(self.models.values(), key=lambda m: (not m.needs_ids, -(m.summary()["best_val_recall@10"] or 0), m.name))

    def default_model(self) -> str:
        return self.ranked_models()[0].name

    def describe_models(self) -> dict[str, Any]:
        ranked = self.ranked_models()
        pair = [ranked[0].name] + [m.name for m in ranked if m.needs_ids != ranked[0].needs_ids][:1]
        return {"run": str(self.run), "dataset": self.run.dataset(), "items": len(self.catalogue), "ids": self.catalogue.ids_name,
                "depth": self.depth, "default": ranked[0].name, "pair": pair if len(pair) == 2 else [m.name for m in ranked[:2]],
                "models": [m.summary() for m in ranked], "unavailable": self.unavailable}

    # ---- recommendations ---------------------------------------------------------------------
    def query(self, history: list[int | str], k: int = 10, model: str | None = None, exclude_history: bool = True) -> Query:
        """Validate a request: a known model, 1 ≤ k ≤ depth, 1 to MAX_HISTORY known items."""
        name = model or self.default_model()
        if name not in self.models:
            why = f" ({self.unavailable[name]})" if name in self.unavailable else ""
            raise NotFound(f"model {name!r} is not served{why}; served: {', '.join(m.name for m in self.ranked_models())}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.depth:
            raise InputError(f"k must be an integer from 1 to {self.depth} (the depth the models rank to); got {k!r}")
        if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)):
            raise InputError("history must be a list of item IDs or ASINs, oldest first")
        if not 1 <= len(history) <= MAX_HISTORY:
            raise InputError(f"history must hold 1 to {MAX_HISTORY} items; got {len(history)}")
        return Query(name, self.catalogue.resolve(history), k, exclude_history)

    def answer(self, queries: list[Query]) -> list[dict[str, Any]]:
        """Recommendations for validated queries: one ranker call (one beam search) per model."""
        out: list[dict[str, Any] | None] = [None] * len(queries)
        for name in dict.fromkeys(q.model for q in queries):
            idx = [i for i, q in enumerate(queries) if q.model == name]
            hists = [np.asarray(queries[i].history, dtype=np.int64) for i in idx]
            model = self.models[name]
            users = np.zeros(len(idx), dtype=np.int64)
            with self._lock, threads(self.threads):
                got = model.rank(hists, users, scores=True) if model.score_kind else model.rank(hists, users)
            items = got[0]
            values = got[2] if model.score_kind else np.full(items.shape, np.nan, dtype=np.float32)
            for i, row, val in zip(idx, items, values):
                out[i] = self._result(queries[i], row, val)
        return out  # type: ignore[return-value]

    def _result(self, q: Query, row: np.ndarray, values: np.ndarray) -> dict[str, Any]:
        seen = set(q.history) if q.exclude_history else set()
        keep = [(int(i), float(v)) for i, v in zip(row, values) if i >= 0 and int(i) not in seen][:q.k]
        cat = self.catalogue
        model = self.models[q.model]
        return {"model": q.model, "kind": model.kind, "k": q.k, "score_kind": model.score_kind,
                "history": [cat.describe(i) for i in q.history],
                "items": [{"rank": r + 1, "score": round(v, 4) if np.isfinite(v) else None, **cat.describe(i)}
                          for r, (i, v) in enumerate(keep)]}

    def recommend(self, history: list[int | str], k: int = 10, model: str | None = None,
                  exclude_history: bool = True) -> dict[str, Any]:
        """The ``k`` items ``model`` ranks first after ``history`` (oldest first), with titles and Semantic IDs;
        the history's own items are left out unless ``exclude_history=False``."""
        return self.answer([self.query(history, k, model, exclude_history)])[0]

    # ---- the catalogue -----------------------------------------------------------------------
    def item(self, key: int | str) -> dict[str, Any]:
        item = self.catalogue.resolve([key])[0]
        return self.catalogue.describe(item) | {"popularity": int(self.catalogue.popularity[item])}

    def search(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        return self.catalogue.search(text, limit)

    def items_under(self, prefix: list[int], limit: int = 50) -> dict[str, Any]:
        return self.catalogue.items_under(prefix, limit)

    def tree(self, prefix: list[int] | tuple[int, ...] = ()) -> dict[str, Any]:
        return self.catalogue.tree(prefix)

    # ---- new items ---------------------------------------------------------------------------
    def assign(self, new_items: list[str]) -> list[dict[str, Any]]:
        """Semantic IDs for new products' texts (the frozen ID model, unique against the catalogue),
        and for each model on Semantic IDs whether it can generate the ID."""
        if self._cold is None:
            self._cold = ColdStart(self.run, self.catalogue, self.device)
        with threads(self.threads):
            records = self._cold.assign(new_items)
        for rec in records:
            rec["models"] = {m.name: self.can_generate(m, rec["sid"]) for m in self.models.values() if m.needs_ids}
        return records

    def can_generate(self, model: Model, sid: list[int]) -> dict[str, Any]:
        """Whether ``model`` can emit ``sid``: trained on these IDs, and every code inside its vocabulary."""
        if model.summary()["ids"] != self.catalogue.ids_name:
            return {"can_generate": False, "why": f"trained on other Semantic IDs ({model.summary()['ids']})"}
        tok = model.meta.get("tokenizer") or {}
        size, dedup = int(tok.get("codebook_size", 0)), int(tok.get("dedup_size", 0))
        if any(c >= size for c in (sid[:-1] if dedup else sid)):
            return {"can_generate": False, "why": f"a code is past the {size} per level the model was trained with"}
        if dedup and sid[-1] >= dedup:
            return {"can_generate": False, "why": f"its collision code {sid[-1]} is past the {dedup} the model was trained "
                                                  "with: it needs retraining (or a larger dedup vocabulary) to emit this ID"}
        return {"can_generate": True, "why": "every code is in its vocabulary: beam search can generate this ID once the "
                                             "item joins the catalogue's trie (cold-start: TIGER §4.4)"}


def load(run_dir: Path | str, **options: Any) -> LoadedRun:
    """Load a finished run folder: every usable model, or ``models=[...]``; ``depth`` (the list length
    models rank to, TIGER's beam size), ``device``, ``threads`` (torch's CPU threads per call; None: as set)."""
    return LoadedRun(run_dir, **options)
