"""The one table of models. Every model kind is spelled here and nowhere else: ``semid train``'s
commands, the rankers of ``semid evaluate`` and the rows of ``semid compare`` are derived from it.

Adding a model is one package under ``semid/models/`` (a config class, ``train`` and ``ranker``)
and one line in :data:`REGISTRY` (docs/architecture.md shows a worked example).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from semid.core.errors import ConfigError

Ref = str | Any  # "package.module:attribute", imported on first use, or the object itself


def resolve(ref: Ref) -> Any:
    """The object a registry reference names (the one place where model code is imported lazily,
    so that the command line starts without torch or Lightning)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Row:
    """One row of ``semid compare``: fixed settings over the model's defaults.

    ``ids``: ``"semantic"`` = the ids stage's Semantic IDs, ``"random"`` = random codes of the same
    shape; ``paper``: the model name of its row in ``results/reference.json``, shown beside it.
    """

    settings: dict[str, Any] = field(default_factory=dict)
    ids: str | None = None
    paper: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything the package knows about one model kind.

    ``config`` is the config class; ``train(cfg, run, out, resume=..., ids=...) -> dict`` writes the
    weights into ``out`` and returns what ``config.json`` holds besides the kind and config;
    ``ranker(folder, config_class, options) -> (rank, info)`` loads a trained folder
    (:mod:`semid.models.common`). Each is a :data:`Ref`.
    """

    kind: str
    config_ref: Ref
    train_ref: Ref
    ranker_ref: Ref
    help: str
    rows: dict[str, Row] = field(default_factory=dict)
    needs_ids: bool = False  # trained on the run's Semantic IDs
    needs_embeddings: bool = False  # reads embed/item_embeddings.npy
    trained: bool = True  # has a training loop (checkpoints, --resume, validation)

    @property
    def config(self) -> type:
        return resolve(self.config_ref)

    @property
    def train(self) -> Callable[..., dict[str, Any]]:
        return resolve(self.train_ref)

    @property
    def ranker(self) -> Callable[..., tuple[Callable, dict[str, Any]]]:
        return resolve(self.ranker_ref)


def family(package: str, config: str) -> tuple[str, str, str]:
    """The three references of a model package laid out as ``config.py``, ``train.py``, ``ranker.py``."""
    return f"{package}.config:{config}", f"{package}.train:train", f"{package}.ranker:ranker"


def single(module: str, config: str) -> tuple[str, str, str]:
    """The three references of a model in one module (``<Config>``, ``train``, ``ranker``)."""
    return f"{module}:{config}", f"{module}:train", f"{module}:ranker"


SEQREC, SIDREC = "semid.models.seqrec", "semid.models.sidrec"

REGISTRY: dict[str, ModelSpec] = {spec.kind: spec for spec in [
    ModelSpec("pop", *single("semid.models.pop", "PopConfig"),
              "Most popular training items, the same list for every user.", {"pop": Row()}, trained=False),
    ModelSpec("knn", *single("semid.models.knn", "KNNConfig"),
              "Semantic KNN over item text embeddings. Overrides: max_items=…, decay=…, exclude_history=true|false",
              {"knn": Row()}, needs_embeddings=True, trained=False),
    ModelSpec("sasrec", *family(SEQREC, "SASRecConfig"),
              "SASRec. Overrides: loss=ce|bce, d_model=…, layers=…, n_heads=…, dropout=…, lr=…, max_epochs=…, threads=…",
              {"sasrec-ce": Row({"loss": "ce"}), "sasrec-bce": Row({"loss": "bce"}, paper="SASRec")}),
    ModelSpec("gru4rec", *family(SEQREC, "GRU4RecConfig"),
              "GRU4Rec with full-softmax CE. Overrides: d_model=…, layers=…, dropout=…, lr=…, max_epochs=…, threads=…",
              {"gru4rec": Row(paper="GRU4Rec")}),
    ModelSpec("bert4rec", *family(SEQREC, "BERT4RecConfig"),
              "BERT4Rec (cloze). Overrides: mask_prob=…, d_model=…, layers=…, n_heads=…, lr=…, max_epochs=…, threads=…",
              {"bert4rec": Row(paper="BERT4Rec")}),
    ModelSpec("tiger", *family("semid.models.tiger", "TigerConfig"),
              "TIGER generative retrieval. Overrides: preset=cpu|cpu-long|cpu-wide|paper|tiny, ids=<folder>, lr=…, max_epochs=…",
              {"tiger": Row(ids="semantic", paper="TIGER"), "tiger-random": Row(ids="random", paper="TIGER, random IDs")},
              needs_ids=True),
    ModelSpec("sid-gru", *family(SIDREC, "SIDGRUConfig"),
              "SID-GRU: a GRU over Semantic-ID item vectors, per-level heads, trie beam search. Overrides: ids=<folder>, d_model=…",
              {"sid-gru": Row(ids="semantic")}, needs_ids=True),
    ModelSpec("sid-bert4rec", *family(SIDREC, "SIDBert4RecConfig"),
              "SID-BERT4Rec: a bidirectional transformer with a [MASK] slot, per-level heads. Overrides: mask_prob=…, layers=…",
              {"sid-bert4rec": Row(ids="semantic")}, needs_ids=True),
]}


def get(kind: str) -> ModelSpec:
    """The spec of ``kind`` (``sid_gru``, the spelling of folders written before 0.2, reads as ``sid-gru``)."""
    spec = REGISTRY.get(kind) or REGISTRY.get(kind.replace("_", "-"))
    if spec is None:
        raise ConfigError(f"unknown model kind {kind!r}; known: {', '.join(REGISTRY)}")
    return spec


def rows() -> dict[str, tuple[ModelSpec, Row]]:
    """Every comparison row: name → (its model, its settings), in registry order."""
    return {name: (spec, row) for spec in REGISTRY.values() for name, row in spec.rows.items()}

