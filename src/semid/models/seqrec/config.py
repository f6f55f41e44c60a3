"""Configs of the item-ID sequential models: ``semid train sasrec|gru4rec|bert4rec``.

The training keys are :class:`semid.training.TrainerConfig`'s (constant learning rate by
default); defaults are the CPU recipes measured on Beauty (docs/baselines.md). ``network`` names
the ``nn.Module`` class a config trains.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from torch import nn

from semid.core.config import TrainerConfig
from semid.models.seqrec.model import BERT4Rec, GRU4Rec, SASRec


class SeqRecConfig(TrainerConfig):
    network: ClassVar[type[nn.Module]]
    max_items: int = Field(50, ge=2, description="history length in items (longer sequences are cut into chunks)")
    d_model: int = Field(64, ge=4, description="embedding and hidden width")
    layers: int = Field(2, ge=1, description="blocks (GRU layers for GRU4Rec)")
    n_heads: int = Field(1, ge=1, description="attention heads (d_model must divide by it)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout on embeddings and inside the blocks")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate (constant; 3e-3 converges within the CPU budget)")
    grad_clip: float = Field(5.0, ge=0, description="gradient-norm clip (0 = off)")
    max_epochs: int = Field(200, ge=1, description="epochs over all training sequences")
    patience: int = Field(5, ge=1, description="early stopping: validations without a better Recall@10")
    negatives: int = Field(0, ge=0, description="0: softmax over the whole catalogue; N: sampled softmax against N "
                           "negatives shared by the batch, for catalogues whose full softmax does not fit (docs/scaling.md)")
    sampler: Literal["uniform", "popularity"] = Field(
        "uniform", description="how negatives= draws: uniformly, or by (training count + 1)^0.75; logQ-corrected")

    @model_validator(mode="after")
    def _sampled_softmax(self) -> SeqRecConfig:
        if self.negatives and self.loss_name == "bce":
            raise ValueError("negatives= sets the sampled softmax of loss=ce; loss=bce draws its own one negative "
                             "per position")
        return self

    @property
    def loss_name(self) -> str:
        return getattr(self, "loss", "ce")


class SASRecConfig(SeqRecConfig):
    """SASRec (Kang & McAuley 2018): causal self-attention over item embeddings, tied output."""

    network: ClassVar[type[nn.Module]] = SASRec
    loss: Literal["ce", "bce"] = Field("ce", description="ce: softmax over the full catalogue; bce: one sampled negative per position (the paper)")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            loss = data.get("loss", "ce")
            data = {"name": f"sasrec-{loss}", **data}
            if loss == "bce":  # the paper's Beauty recipe: dropout 0.5, many cheap epochs
                data = {"dropout": 0.5, "lr": 1e-3, "val_every": 5, "patience": 10, **data}
        return data


class GRU4RecConfig(SeqRecConfig):
    """GRU4Rec (Hidasi et al. 2016) trained with full-softmax cross-entropy at every position."""

    network: ClassVar[type[nn.Module]] = GRU4Rec
    name: str = Field("gru4rec", description="model folder under RUN/models")
    layers: int = Field(1, ge=1, description="GRU layers")


class BERT4RecConfig(SeqRecConfig):
    """BERT4Rec (Sun et al. 2019): bidirectional encoder trained to fill masked items (cloze)."""

    network: ClassVar[type[nn.Module]] = BERT4Rec
    name: str = Field("bert4rec", description="model folder under RUN/models")
    n_heads: int = Field(2, ge=1, description="attention heads (d_model must divide by it)")
    lr: float = Field(2e-3, gt=0, description="AdamW learning rate (constant)")
    mask_prob: float = Field(0.6, gt=0, lt=1, description="share of items masked in a training sequence (paper: 0.6 on Beauty)")
    last_mask_share: float = Field(0.1, ge=0, le=1, description="share of training sequences with only the last item masked (as at inference)")

    @property
    def loss_name(self) -> str:
        return "cloze"
