"""Config of ``semid train tiger``, with named presets.

    semid train tiger --out runs/beauty                     # preset cpu
    semid train tiger --out runs/beauty preset=cpu-long     # the cpu network for 80 epochs (about an hour)
    semid train tiger --out runs/beauty preset=cpu-wide     # width 128 for 60 epochs (about 75 minutes)
    semid train tiger --out runs/beauty preset=paper        # the paper's recipe (GPU or a long CPU run)
    semid train tiger --out runs/beauty preset=paper max_steps=20000 lr=0.005

A preset fills every field the user did not set; explicit keys always win.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from semid.generative.config import SIDTrainerConfig

# cpu: measured on a 2-core CPU (docs/tiger.md): the block-causal encoder trains every sliding
# window of a sequence in one pass; a small model (d 64) gets more epochs into the budget. 26 epochs
# (cosine over the 26, validated on 10,000 users every 2 epochs; a budget in epochs, never in
# minutes) keep `semid run --dataset beauty` under 30 minutes on this 2-core CPU, whose speed varied
# by 15% between hours (2,800 to 3,300 TIGER training examples/s): 40 epochs took 32 minutes, and
# their validation Recall@10 was 0.0814 after 25 epochs against 0.0864 after 39 (`tiger-epochs`
# measures longer runs). Relative (item-distance) positions and a decoder-heavy split (1 encoder + 3
# decoder layers) fit the decoder's later ID levels best in that budget.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(d_model=64, n_heads=4, head_dim=16, d_ff=256, encoder_layers=1, decoder_layers=3,
                dropout=0.1, attn_dropout=0.0, recency_bias=True, positions="relative", encoder_mask="causal",
                batch_size=256, optimizer="adamw", lr=4e-3, weight_decay=1e-4, warmup_steps=300,
                schedule="cosine", max_epochs=26, max_steps=-1, max_time_min=None, val_every=2, patience=6,
                val_beam=20),
    # TIGER §4 (Rajput et al. 2023): 4 + 4 layers, d 128, 6 heads of 64, MLP 1024, dropout 0.1,
    # batch 256, lr 0.01 for 10k steps then inverse square root decay, 200k steps; T5-style
    # Adafactor and relative positions; a bidirectional encoder over each window.
    "paper": dict(d_model=128, n_heads=6, head_dim=64, d_ff=1024, encoder_layers=4, decoder_layers=4,
                  dropout=0.1, positions="relative", encoder_mask="bidirectional", batch_size=256, optimizer="adafactor", lr=0.01,
                  weight_decay=0.0, warmup_steps=10_000, schedule="inverse_sqrt", max_epochs=10_000,
                  max_steps=200_000, max_time_min=None, patience=10, val_users=0, val_beam=20),
    # seconds, for tests and the toy dataset
    "tiny": dict(d_model=32, n_heads=2, head_dim=16, d_ff=64, encoder_layers=1, decoder_layers=1,
                 dropout=0.0, recency_bias=True, positions="relative", encoder_mask="causal", batch_size=64, optimizer="adamw", lr=5e-3,
                 weight_decay=0.0, warmup_steps=10, schedule="cosine", max_epochs=3, max_steps=-1,
                 max_time_min=None, patience=3, val_users=200, val_beam=10),
}
# cpu-long: the same network and optimiser for 80 epochs, run to the end of the cosine schedule
# (patience longer than the run): chosen on validation by `semid experiment tiger-epochs` (Recall@10
# 0.0910 against 0.0844 at 26 epochs, better in a paired test; seed 0), about 50 minutes of
# training on one thread of this 2-core CPU (3,051 s a seed). `tiger-epochs-test` scores it on test at 3 seeds.
PRESETS["cpu-long"] = {**PRESETS["cpu"], "max_epochs": 80, "patience": 50}
# cpu-wide: the cpu network at width 128 (4 heads of 32, MLP 512) for 60 epochs, to the end of its
# schedule: the top point of `semid experiment tiger-long` on validation (0.0913 against cpu-long's
# 0.0892, not a significant difference; seed 0), about 75 minutes of training on one thread. On test
# at 3 seeds (`tiger-long-test`): Recall@10 0.0677 ± 0.0015 / NDCG@10 0.0365 ± 0.0016.
PRESETS["cpu-wide"] = {**PRESETS["cpu"], "d_model": 128, "head_dim": 32, "d_ff": 512, "max_epochs": 60, "patience": 50}


class TigerConfig(SIDTrainerConfig):
    preset: Literal["cpu", "cpu-long", "cpu-wide", "paper", "tiny"] = Field("cpu", description="named recipe filling every unset field")
    name: str = Field("tiger", description="model folder under RUN/models")
    # model
    d_model: int = Field(128, ge=8, description="model width")
    n_heads: int = Field(6, ge=1, description="attention heads")
    head_dim: int = Field(64, ge=4, description="width of one head")
    d_ff: int = Field(1024, ge=8, description="MLP hidden width")
    encoder_layers: int = Field(4, ge=1, description="encoder layers")
    decoder_layers: int = Field(4, ge=1, description="decoder layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout everywhere")
    attn_dropout: float | None = Field(None, ge=0, lt=1, description="dropout on attention weights (unset = dropout)")
    max_items: int = Field(20, ge=1, description="history length in items (TIGER: 20)")
    encoder_mask: Literal["causal", "bidirectional"] = Field(
        "causal", description="causal: one encoder pass trains all windows of a sequence; bidirectional: the paper's encoder, one pass per window")
    recency_bias: bool = Field(False, description="learned per-head cross-attention bias by how many items back a memory token is")
    positions: Literal["absolute", "relative"] = Field(
        "absolute", description="encoder positions: absolute token embeddings, or relative (T5-like): "
                                "a learned bias by item distance + an ID-level embedding")
    encoder_input: Literal["tokens", "items"] = Field(
        "tokens", description="tokens: the encoder reads every ID token of the history (the paper); items: one vector "
                              "per history item, the sum of its token embeddings (T times fewer encoder positions)")
    user_buckets: int = Field(0, ge=0, description="hashed user tokens prepended to the history (TIGER: 2000; GRID: 0 is best)")
    # optimisation (the other keys are semid.training.TrainerConfig's)
    batch_size: int = Field(256, ge=1, description="training examples (targets) per batch")
    weight_decay: float = Field(1e-4, ge=0, description="weight decay")
    warmup_steps: int = Field(300, ge=0, description="linear warm-up steps (inverse_sqrt: constant lr for these steps)")
    schedule: Literal["cosine", "inverse_sqrt", "constant"] = Field("cosine", description="lr schedule after warm-up")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = data.get("preset", "cpu")
            if preset in PRESETS:
                data = {**PRESETS[preset], **data}
        return data

