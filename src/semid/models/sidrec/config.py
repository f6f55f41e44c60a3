"""Configs of ``semid train sid-gru`` and ``semid train sid-bert4rec``.

    semid train sid-gru --out runs/beauty threads=1
    semid train sid-bert4rec --out runs/beauty d_model=64 mask_prob=0.3

Defaults are the recipe measured on Beauty on a 2-core CPU (docs/sid_baselines.md). The
training keys are :class:`semid.training.TrainerConfig`'s; ``network`` names the encoder class.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from semid.generative.config import SIDTrainerConfig
from semid.models.sidrec.model import SIDGRU, SIDBert4Rec, SIDRecModel


class SIDRecConfig(SIDTrainerConfig):
    """Keys shared by the Semantic-ID-native baselines."""

    network: ClassVar[type[SIDRecModel]]
    # model
    d_model: int = Field(128, ge=8, description="width of code embeddings and of the user state")
    d_ff: int = Field(256, ge=8, description="hidden width of each level head's MLP (and the transformer's MLP)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on item embeddings, inside the encoder and in the heads")
    tied: bool = Field(True, description="level heads score codes by dot product with the input code embeddings (+ a bias)")
    members: int = Field(1, ge=1, le=16, description="an ensemble of this many networks, trained one after another "
                         "(seeds seed × members + 0, 1, ...; the training cost adds up) and decoded together by the "
                         "mean of their log-probabilities")
    # optimisation (the other keys are semid.training.TrainerConfig's)
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW)")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up steps")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="lr schedule after warm-up ")
    max_epochs: int = Field(60, ge=1, description="epochs over all training sequences")
    patience: int = Field(6, ge=1, description="early stopping: validations without a better Recall@10")


    @model_validator(mode="after")
    def _ensemble_in_one_process(self) -> SIDRecConfig:
        if self.members > 1 and (self.devices != 1 or self.num_nodes > 1):
            raise ValueError(f"members={self.members} trains its networks one after another in one process: it needs "
                             f"devices=1 and num_nodes=1 (got devices={self.devices}, num_nodes={self.num_nodes}); "
                             "train one network per process instead")
        return self


class SIDGRUConfig(SIDRecConfig):
    """SID-GRU: a GRU over the history's items, each the sum of its Semantic-ID code embeddings."""

    network: ClassVar[type[SIDRecModel]] = SIDGRU
    name: str = Field("sid-gru", description="model folder under RUN/models")
    gru_layers: int = Field(1, ge=1, description="stacked GRU layers")


class SIDBert4RecConfig(SIDRecConfig):
    """SID-BERT4Rec: a bidirectional transformer over the history's items plus a [MASK] slot."""

    network: ClassVar[type[SIDRecModel]] = SIDBert4Rec
    name: str = Field("sid-bert4rec", description="model folder under RUN/models")
    d_model: int = Field(64, ge=8, description="width of code embeddings and of the transformer")
    layers: int = Field(2, ge=1, description="transformer layers")
    n_heads: int = Field(2, ge=1, description="attention heads (d_model must divide by it)")
    mask_prob: float = Field(0.2, ge=0, lt=1, description="share of training items replaced by [MASK] (the last item always is)")
    max_epochs: int = Field(200, ge=1, description="epochs over all training sequences")
    patience: int = Field(10, ge=1, description="early stopping: validations without a better Recall@10")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> SIDBert4RecConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self
