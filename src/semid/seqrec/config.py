"""Configs of the item-ID baselines: ``semid train sasrec|gru4rec|bert4rec|pop|knn``.

Every config has ``name`` (the folder under ``RUN/models``), ``seed`` and ``threads``. The three
neural models share the training keys of :class:`NeuralConfig`; defaults are the CPU recipes
measured on Beauty (docs/baselines.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from semid.config import StageConfig


class BaseConfig(StageConfig):
    name: str = Field("", description="model folder under RUN/models (empty = the model's default name)")
    seed: int = Field(0, description="seed for init, shuffling, negatives, masks and the validation sample")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (unset = torch's default)")


class NeuralConfig(BaseConfig):
    max_items: int = Field(50, ge=2, description="history length in items (longer sequences are cut into chunks)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on embeddings and inside the blocks")
    batch_size: int = Field(128, ge=1, description="training sequences (chunks) per batch, length-bucketed")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate (constant; 3e-3 converges within the CPU budget)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    grad_clip: float = Field(5.0, ge=0, description="gradient-norm clip (0 = off)")
    max_epochs: int = Field(200, ge=1, description="epochs over all training sequences")
    max_time_min: float | None = Field(10.0, gt=0, description="stop training after this many minutes (wall time)")
    patience: int = Field(5, ge=1, description="early stopping: validations without a better Recall@10")
    val_every: int = Field(1, ge=1, description="validate every this many epochs")
    val_users: int = Field(3000, ge=0, description="validation users per check (a fixed random sample; 0 = all)")
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto: bf16 on a GPU that has it, else fp16 on GPU, 32 on CPU")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="where to train")


class SASRecConfig(NeuralConfig):
    """SASRec (Kang & McAuley 2018): causal self-attention over item embeddings, tied output."""

    loss: Literal["ce", "bce"] = Field("ce", description="ce: softmax over the full catalogue; bce: one sampled negative per position (the paper)")
    d_model: int = Field(64, ge=4, description="embedding and hidden width")
    layers: int = Field(2, ge=1, description="self-attention blocks")
    heads: int = Field(1, ge=1, description="attention heads (d_model must divide by it)")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            loss = data.get("loss", "ce")
            data = {"name": f"sasrec-{loss}", **data}
            if loss == "bce":  # the paper's Beauty recipe: dropout 0.5, many cheap epochs, 14 minutes
                data = {"dropout": 0.5, "lr": 1e-3, "val_every": 5, "patience": 10, "val_users": 0, "max_time_min": 14.0,
                        **data}
        return data


class GRU4RecConfig(NeuralConfig):
    """GRU4Rec (Hidasi et al. 2016) trained with full-softmax cross-entropy at every position."""

    loss: Literal["ce"] = Field("ce", description="softmax cross-entropy over the full catalogue at every position")
    hidden: int = Field(64, ge=4, description="item embedding and GRU hidden width (output tied to the embedding)")
    layers: int = Field(1, ge=1, description="GRU layers")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return {"name": "gru4rec", **data} if isinstance(data, dict) else data


class BERT4RecConfig(NeuralConfig):
    """BERT4Rec (Sun et al. 2019): bidirectional encoder trained to fill masked items (cloze)."""

    d_model: int = Field(64, ge=4, description="embedding and hidden width")
    layers: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(2, ge=1, description="attention heads (d_model must divide by it)")
    mask_prob: float = Field(0.6, gt=0, lt=1, description="share of items masked in a training sequence (paper: 0.6 on Beauty)")
    last_mask_share: float = Field(0.1, ge=0, le=1, description="share of training sequences with only the last item masked (as at inference)")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return {"name": "bert4rec", "lr": 2e-3, **data} if isinstance(data, dict) else data


class PopConfig(BaseConfig):
    """Most popular items: counts over every item of the training sequences."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return {"name": "pop", **data} if isinstance(data, dict) else data


class KNNConfig(BaseConfig):
    """Items nearest (cosine) to a recency-weighted sum of the last items' text embeddings."""

    last_n: int = Field(2, ge=1, description="history items in the query (the most recent)")
    decay: float = Field(0.3, gt=0, le=1, description="weight of an item k steps back = decay**k")
    exclude_history: bool = Field(False, description="drop the user's history items from the list (off: as every model here)")
    embeddings: str = Field("embed/item_embeddings.npy", description="item embeddings [N, d], relative to the run folder")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return {"name": "knn", **data} if isinstance(data, dict) else data
