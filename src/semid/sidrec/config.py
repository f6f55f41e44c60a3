"""Configs of ``semid train sid-gru`` and ``semid train sid-bert4rec``.

    semid train sid-gru --out runs/beauty threads=1
    semid train sid-bert4rec --out runs/beauty d_model=64 mask_prob=0.3

Defaults are the recipe measured on Beauty on a 2-core CPU (docs/sid_baselines.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from semid.config import StageConfig


class SIDRecConfig(StageConfig):
    """Keys shared by the Semantic-ID-native baselines."""

    name: str = Field("sid", description="model folder under RUN/models")
    ids: str | None = Field(None, description="Semantic IDs to use: a folder name under RUN/ids (unset = the only one)")
    # model
    max_items: int = Field(20, ge=1, description="history length in items")
    d_model: int = Field(128, ge=8, description="width of code embeddings and of the user state")
    d_ff: int = Field(256, ge=8, description="hidden width of each level head's MLP (and the transformer's MLP)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on item embeddings, inside the encoder and in the heads")
    tied: bool = Field(True, description="level heads score codes by dot product with the input code embeddings (+ a bias)")
    # optimisation
    batch_size: int = Field(128, ge=1, description="training sequences (chunks of at most max_items + 1 items) per batch")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (not on embeddings, biases, norms)")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up steps")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="lr schedule after warm-up (cosine anneals by max_time_min too)")
    grad_clip: float = Field(1.0, ge=0, description="gradient-norm clip (0 = off)")
    max_epochs: int = Field(60, ge=1, description="epochs over all training sequences")
    max_steps: int = Field(-1, description="stop after this many steps (-1 = no limit)")
    max_time_min: float | None = Field(9.0, gt=0, description="stop training after this many minutes (wall time)")
    patience: int = Field(6, ge=1, description="early stopping: validations without a better Recall@10")
    val_every: int = Field(1, ge=1, description="validate every this many epochs")
    val_users: int = Field(2000, ge=0, description="validation users per check (a fixed random sample; 0 = all)")
    val_beam: int = Field(20, ge=1, description="beam size during validation")
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = Field("auto", description="auto: bf16 on a GPU that has it, else fp16 on GPU, 32 on CPU")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="where to train")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (unset = torch's default)")
    seed: int = Field(0, description="seed for init, shuffling, masking and the validation sample")


class SIDGRUConfig(SIDRecConfig):
    """SID-GRU: a GRU over the history's items, each the sum of its Semantic-ID code embeddings."""

    name: str = Field("sid-gru", description="model folder under RUN/models")
    gru_layers: int = Field(1, ge=1, description="stacked GRU layers")


class SIDBert4RecConfig(SIDRecConfig):
    """SID-BERT4Rec: a bidirectional transformer over the history's items plus a [MASK] slot."""

    name: str = Field("sid-bert4rec", description="model folder under RUN/models")
    d_model: int = Field(64, ge=8, description="width of code embeddings and of the transformer")
    layers: int = Field(2, ge=1, description="transformer layers")
    n_heads: int = Field(2, ge=1, description="attention heads (d_model must divide by it)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on item embeddings, inside the encoder and in the heads")
    mask_prob: float = Field(0.2, ge=0, lt=1, description="share of training items replaced by [MASK] (the last item always is)")
    max_epochs: int = Field(200, ge=1, description="epochs over all training sequences")
    patience: int = Field(10, ge=1, description="early stopping: validations without a better Recall@10")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> SIDBert4RecConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self
