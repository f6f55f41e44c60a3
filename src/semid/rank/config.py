"""Configs of the SID ranking study (``semid rank train|study|rerank``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from semid.core.config import StageConfig
from semid.data.config import PrepareConfig

Representation = Literal["hash", "dense", "unigram", "unigram_dedup", "bigram", "prefix", "spm"]
REPRESENTATIONS: tuple[str, ...] = ("hash", "dense", "unigram", "unigram_dedup", "bigram", "prefix", "spm")
Sampling = Literal["popularity", "uniform"]


class RankIdsConfig(StageConfig):
    """Semantic IDs for the ranker, fitted on the items seen in training only; every other item
    (the cold-start set) is mapped with the frozen codec, so its IDs never saw its events."""

    method: Literal["rqkmeans", "rqvae"] = Field("rqkmeans",
                                                 description="ID model (rqkmeans: fast and deterministic on CPU)")
    levels: int = Field(3, ge=1, le=8, description="L: code levels")
    codebook_size: int = Field(256, ge=2, le=4096, description="K: codes per level")
    seed: int = Field(0, description="seed of the ID model")


class RankConfig(StageConfig):
    """One ranker: an item representation inside a DIN-style model trained with BCE."""

    representation: Representation = Field("unigram", description="hash, dense, unigram, unigram_dedup "
                                                                 "(collision-free reference), bigram, prefix or spm")
    table_size: int = Field(4096, ge=16, description="T: rows of the hash table; per-table budget of bigram/prefix "
                                                      "n-grams (hashed when K^n > T); SPM vocabulary size")
    dim: int = Field(32, ge=4, description="embedding width d")
    history: bool = Field(True, description="use the user's history (false: the paper's no-history setting)")
    max_items: int = Field(20, ge=1, description="most recent history items the model sees")
    mlp: list[int] = Field(default_factory=lambda: [64, 32], description="widths of the scoring MLP")
    neg_ratio: int = Field(1, ge=1, description="sampled negatives per observed training event")
    neg_sampling: Sampling = Field("popularity", description="training negatives: by training count^alpha or uniform")
    neg_alpha: float = Field(0.75, ge=0, le=1, description="popularity sampling ∝ count^alpha (train and eval lists; "
                                                          "1 makes popularity useless to a model without history)")
    eval_negatives: int = Field(99, ge=1, description="N: negatives in each evaluation list (positive + N)")
    eval_sampling: Sampling = Field("uniform", description="evaluation negatives: uniform over the catalogue (so "
                                                         "popularity is informative, as in CTR data) or by count^alpha")
    eval_seed: int = Field(1234, description="seed of the evaluation lists (fixed, so every model sees the same lists)")
    val_users: int | None = Field(3000, ge=1, description="validation events used for early stopping (None: all)")
    epochs: int = Field(5, ge=1, description="maximum passes over the training events")
    patience: int = Field(1, ge=0, description="stop after this many epochs without a better validation AUC")
    batch_size: int = Field(1024, ge=1, description="examples per optimizer step")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    seed: int = Field(0, description="seed of init, negatives, batches and the hash functions")
    threads: int | None = Field(None, ge=1, description="torch threads (None: torch default; 1 on a shared machine)")
    ids: RankIdsConfig = Field(default_factory=RankIdsConfig, description="Semantic IDs (fitted on training items)")
    name: str | None = Field(None, description="model folder under RUN/models (default rank-<representation>-<T>)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Rankers written before 0.2 call ``max_items`` ``max_history``."""
        if isinstance(data, dict) and "max_history" in data:
            data = {("max_items" if k == "max_history" else k): v for k, v in data.items()}
        return data

    def folder_name(self) -> str:
        hist = "" if self.history else "-nohist"
        return self.name or f"rank-{self.representation}-{self.table_size}{hist}"


class StudyConfig(StageConfig):
    """The grid: representations × table sizes × history on/off × seeds, on one run folder."""

    representations: list[Representation] = Field(default_factory=lambda: list(REPRESENTATIONS),
                                                  description="representations to compare (hash is the baseline)")
    table_sizes: list[int] = Field(default_factory=lambda: [1024, 4096, 16384],
                                   description="T values swept by hash, bigram, prefix and spm (unigram and dense "
                                               "have one size and run once)")
    histories: list[bool] = Field(default_factory=lambda: [True, False], description="history settings to run")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], description="training seeds")
    rank: RankConfig = Field(default_factory=RankConfig, description="base ranker config for every cell")
    prepare: PrepareConfig | None = Field(None, description="when set: prepare + embed the run folder first "
                                                            "(e.g. the held-out-items or temporal split)")
    bootstrap: int = Field(1000, ge=0, description="paired bootstrap resamples (test events drawn once for both "
                                                   "models, each model's seeds drawn with replacement)")
    permutations: int = Field(10000, ge=1, description="sign-flip permutations of the per-event differences of "
                                                      "seed means (exact up to 16 events)")
    alpha: float = Field(0.05, gt=0, lt=1, description="level of the Holm-adjusted tests behind every verdict")
    tail_share: float = Field(0.5, gt=0, lt=1, description="tail slice: positives among this share of least "
                                                           "popular items seen in training")
    results: str | None = Field(None, description="also write results/<dataset>/rank_study.json under this folder")

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if not self.representations or not self.seeds or not self.histories:
            raise ValueError("representations, histories and seeds must each list at least one value")
        if not self.table_sizes or any(t < 16 for t in self.table_sizes):
            raise ValueError("table_sizes must list values >= 16")
        return self


class RerankConfig(StageConfig):
    """Two stages: TIGER retrieves top_k items, a trained ranker re-orders them."""

    tiger: str = Field("tiger", description="TIGER model folder under RUN/models")
    ranker: str = Field("rank-unigram-4096", description="ranker folder under RUN/models (semid rank train)")
    top_k: int = Field(50, ge=10, description="items TIGER retrieves per user")
    beam_size: int = Field(50, ge=1, description="TIGER beam size (at least top_k)")
    max_users: int | None = Field(None, ge=1, description="score a random sample of this many test users (None: all)")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of users for 95% CIs")
    seed: int = Field(0, description="seed of the user sample and the bootstrap")
    threads: int | None = Field(None, ge=1, description="torch threads")

    @model_validator(mode="after")
    def _check(self) -> RerankConfig:
        if self.beam_size < self.top_k:
            raise ValueError(f"beam_size ({self.beam_size}) must be at least top_k ({self.top_k})")
        return self
