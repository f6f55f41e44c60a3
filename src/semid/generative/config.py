"""Config keys of every model trained on Semantic IDs (pydantic only: loads without torch)."""

from __future__ import annotations

from pydantic import Field

from semid.core.config import TrainerConfig


class SIDTrainerConfig(TrainerConfig):
    """Training keys of a model on Semantic IDs."""

    ids: str | None = Field(None, description="Semantic IDs to use: a folder name under RUN/ids (unset = the ids stage's / the only one)")
    max_items: int = Field(20, ge=1, description="history length in items")
    val_beam: int = Field(20, ge=1, description="beam size during validation")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the training cross-entropy, over the "
                                   "codes of the level being predicted")
