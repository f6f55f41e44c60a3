"""Config of the ``prepare`` stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from semid.core.config import StageConfig
from semid.data.datasets import NAMED
from semid.data.readers import FORMATS, RAW_FORMATS

DEFAULT_TEMPLATE = ["{title}", "Brand: {brand}", "Categories: {categories}", "Price: {price}", "{description}"]


class ToyConfig(StageConfig):
    """Size and shape of the synthetic ``toy`` dataset (tests and offline demos only)."""

    n_users: int = Field(600, ge=10, description="number of users")
    n_items: int = Field(300, ge=10, description="number of items")
    n_top_categories: int = Field(6, ge=2, description="top-level categories in the tree")
    n_sub_categories: int = Field(4, ge=1, description="sub-categories under each top-level one")
    n_brands: int = Field(40, ge=2, description="number of brands")
    min_len: int = Field(5, ge=3, description="shortest user sequence")
    max_len: int = Field(20, ge=3, description="longest user sequence")
    with_timestamps: bool = Field(True, description="give events unix-second timestamps")

    @model_validator(mode="after")
    def _check(self) -> ToyConfig:
        if self.min_len > self.max_len:
            raise ValueError(f"toy.min_len ({self.min_len}) is above toy.max_len ({self.max_len})")
        return self


def is_raw(fmt: str) -> bool:
    """Raw dumps are cleaned and filtered by default; benchmark files are used as published."""
    return fmt in RAW_FORMATS


class PrepareConfig(StageConfig):
    dataset: str = Field("beauty", description=f"named dataset ({', '.join([*NAMED, 'toy'])}) or a label for --path data")
    format: str | None = Field(None, description=f"source format ({', '.join(FORMATS)}); inferred from the named dataset when unset")
    category: str | None = Field(None, description="category in raw file names (e.g. Beauty); found automatically when the folder holds one")
    strict: bool = Field(True, description="stop at the first malformed line (True) or skip and count it (False)")
    dedup: bool | None = Field(None, description="keep only the first of repeated (user, item) events "
                               "(unset = on for raw Amazon files, off for benchmark files, which are used as published)")
    min_rating: float | None = Field(None, description="raw reviews only: drop events rated below this")
    k_core: int | None = Field(None, ge=0, description="iterative k-core: users and items with fewer events are dropped "
                               "(0 = off; unset = 5 for raw Amazon files, off for benchmark files, which are used as published)")
    user_k: int | None = Field(None, ge=0, description="k for users (defaults to k_core)")
    item_k: int | None = Field(None, ge=0, description="k for items (defaults to k_core)")
    text_template: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATE),
                                     description="parts of the item text; a part whose field is empty is left out")
    text_sep: str = Field(". ", description="separator between the parts of the item text")
    text_max_words: int = Field(128, ge=1, description="token budget of the item text, in whitespace-separated words")
    missing_text: Literal["placeholder", "drop", "error"] = Field(
        "placeholder", description="items without any text: use 'item <asin>', drop them with their events, or stop")
    split: Literal["loo", "temporal"] = Field("loo", description="leave-one-out per user (TIGER protocol) or a global time split")
    temporal_test_share: float = Field(0.1, gt=0, lt=1, description="temporal split: share of events (latest) in test")
    temporal_val_share: float = Field(0.1, ge=0, lt=1, description="temporal split: share of events before test in validation")
    temporal_cut: int | None = Field(None, description="temporal split: explicit test cut time (unix seconds); overrides the share")
    holdout_items_share: float = Field(
        0.0, ge=0, lt=1, description="share of items kept out of training (cold-start items, for data without timestamps)")
    seed: int = Field(0, description="seed for the toy generator and the held-out items")
    engine: Literal["auto", "memory", "streaming"] = Field(
        "auto", description="memory: hold the interaction table; streaming: Parquet files on disk and polars' streaming "
        "engine, memory bounded by the distinct users and items, not the reviews; auto: streaming for raw Amazon "
        "files over 256 MiB. Both give the same outputs, so it is not part of the stage's fingerprint")
    write_csv: bool = Field(True, description="also write items/interactions/train/val/test as CSV")
    toy: ToyConfig = Field(default_factory=ToyConfig, description="the synthetic dataset's size")


    @field_validator("format")
    @classmethod
    def _known_format(cls, fmt: str | None) -> str | None:
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        return fmt

    @model_validator(mode="after")
    def _check(self) -> PrepareConfig:
        for part in self.text_template:
            if part.count("{") != 1 or part.count("}") != 1:
                raise ValueError(f"text_template part {part!r} must hold exactly one {{field}}")
        if self.temporal_test_share + self.temporal_val_share >= 1:
            raise ValueError("temporal_test_share + temporal_val_share must be below 1")
        return self

    def resolved_k(self, fmt: str) -> tuple[int, int]:
        """(k for users, k for items) for a source format."""
        k = self.k_core if self.k_core is not None else (5 if is_raw(fmt) else 0)
        return (k if self.user_k is None else self.user_k, k if self.item_k is None else self.item_k)

    def resolved_dedup(self, fmt: str) -> bool:
        return is_raw(fmt) if self.dedup is None else self.dedup
