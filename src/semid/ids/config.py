"""Config of the Semantic ID stage (``semid ids train|assign|analyze|sweep``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from semid.core.config import StageConfig
from semid.ids.methods import METHODS


class IdsConfig(StageConfig):
    """One Semantic ID model. Defaults follow TIGER (3 × 256, β = 0.25, MLP 512-256-128, latent 32),
    with a CPU-sized training budget; ``configs/ids_paper.yaml`` holds the paper's recipe."""

    method: str = Field("rqvae", description="; ".join(f"{k}: {m.doc}" for k, m in METHODS.items()))
    levels: int = Field(3, ge=1, le=16, description="L: number of code levels")
    codebook_size: int = Field(256, ge=2, le=65536, description="K: codes per level")
    name: str | None = Field(None, description="folder under RUN/ids (default <method>-<L>x<K>)")
    # RQ-VAE model
    hidden: list[int] = Field(default_factory=lambda: [512, 256, 128], description="encoder MLP widths (the decoder mirrors them)")
    latent_dim: int = Field(32, ge=1, description="latent size the quantizer works in")
    beta: float = Field(0.25, ge=0, description="weight of the commitment loss")
    # RQ-VAE training
    optimizer: Literal["adam", "adamw", "adagrad", "sgd"] = Field("adam", description="optimizer (TIGER: adagrad, lr 0.4)")
    lr: float = Field(1e-3, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0, description="weight decay")
    steps: int = Field(2000, ge=0, description="optimizer steps (~1–2 min for Beauty on 2 CPU cores; TIGER: 20k epochs on GPU)")
    batch_size: int = Field(1024, ge=1, description="items per step")
    kmeans_init: bool = Field(True, description="initialise each level's codebook by k-means on encoded residuals")
    kmeans_init_sample: int = Field(16384, ge=1, description="items the k-means initialisation sees")
    dead_code_reset: bool = Field(True, description="reset codes unused for reset_every steps to random batch residuals")
    reset_every: int = Field(50, ge=1, description="window (steps) over which a code must be used to survive")
    reset_until: float = Field(0.9, ge=0, le=1, description="stop resetting after this share of the steps, so codebooks settle")
    log_every: int = Field(25, ge=1, description="steps between points of the training curve")
    # k-means (rqkmeans and the initialisation)
    kmeans_iters: int = Field(25, ge=1, description="k-means iterations per level (faiss)")
    balance_iters: int = Field(5, ge=0, description="rqkmeans_balanced: capacity-constrained assignment + centroid update rounds per level")
    # rqvae_cf: collaborative signal (LETTER-style)
    cf_weight: float = Field(0.1, ge=0, description="rqvae_cf: weight of the alignment of quantized latents with collaborative embeddings")
    cf_dim: int = Field(64, ge=2, description="rqvae_cf: dimensions of the collaborative embeddings (PPMI + truncated SVD)")
    cf_window: int = Field(3, ge=1, description="rqvae_cf: items at most this many positions apart in a training sequence co-occur")
    cf_temperature: float = Field(0.1, gt=0, description="rqvae_cf: temperature of the alignment InfoNCE and of the soft code usage")
    diversity_weight: float = Field(0.1, ge=0, description="rqvae_cf: weight of the code-diversity term (KL of soft usage from uniform)")
    # IDs
    dedup: bool = Field(True, description="make IDs unique (false: leave collisions, for analysis only)")
    collisions: Literal["extra_code", "reencode"] = Field(
        "extra_code", description="how IDs are made unique: extra_code appends TIGER's code 0, 1, 2, … among items "
        "sharing all L codes (L+1 tokens); reencode keeps L codes, moving each colliding item but the one nearest "
        "the codeword to its nearest free last-level code")
    train_sample: int | None = Field(None, ge=1, description="fit on at most this many items (a seeded uniform sample), then "
                                                           "code every item with the frozen model, chunk by chunk (millions of items)")
    seed: int = Field(0, description="seed of everything random (init, batches, random IDs)")
    threads: int | None = Field(1, ge=1, description="torch/faiss threads (None: all CPUs; 1 ran 4× faster than 2 on a shared 2-core machine)")
    # analysis
    tsne_sample: int = Field(2000, ge=0, description="items in the t-SNE map (0: no map)")
    top_words: int = Field(8, ge=1, description="distinctive words listed per first-level code")

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"unknown ID method {method!r}; known: {', '.join(METHODS)}")
        return method

    @model_validator(mode="after")
    def _check(self) -> IdsConfig:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError("hidden must list at least one positive width")
        if self.collisions == "reencode" and not self.dedup:
            raise ValueError("collisions=reencode makes IDs unique, dedup=false leaves collisions: pick one")
        return self

    def scheme(self) -> str:
        """How collisions are handled: extra_code, reencode or none (see :mod:`semid.ids.collisions`)."""
        return self.collisions if self.dedup else "none"

    def folder_name(self) -> str:
        return self.name or f"{self.method}-{self.levels}x{self.codebook_size}"

    def id_fields(self) -> set[str]:
        """Fields that change the trained IDs (the rest only change logging or analysis)."""
        common = {"method", "levels", "codebook_size", "seed", "dedup", "collisions", "train_sample"}
        if self.method == "rqkmeans":
            return common | {"kmeans_iters"}
        if self.method == "rqkmeans_balanced":
            return common | {"kmeans_iters", "balance_iters"}
        if self.method == "random":
            return common
        rqvae = common | {"threads", "hidden", "latent_dim", "beta", "optimizer", "lr", "weight_decay", "steps", "batch_size",
                         "kmeans_init", "kmeans_init_sample", "dead_code_reset", "reset_every", "reset_until",
                         "kmeans_iters"}
        if self.method == "rqvae_cf":
            return rqvae | {"cf_weight", "cf_dim", "cf_window", "cf_temperature", "diversity_weight"}
        return rqvae
