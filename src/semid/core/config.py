"""Typed configs: YAML files of overrides plus ``key=value`` pairs, validated by pydantic.

Every stage has one config class (a subclass of :class:`StageConfig`). Unknown keys and bad
values raise :class:`~semid.core.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from semid.core.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


class StageConfig(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[x, y]"]`` into a nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {pair!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r} sets a key inside the scalar {part!r}")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"unknown config key '{key}'"
    return f"bad value for '{key}': {err['msg']} (got {err.get('input')!r})"


def build(cls: type[C], values: dict[str, Any]) -> C:
    """Validate ``values`` into ``cls``; errors name every offending key."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        valid = ", ".join(sorted(cls.model_fields))
        raise ConfigError("; ".join(lines) + f". Valid keys of {cls.__name__}: {valid}") from None


def load(cls: type[C], config_file: Path | None = None, overrides: list[str] | None = None,
         section: str | None = None, **fixed: Any) -> C:
    """Load ``cls`` from an optional YAML file, ``key=value`` overrides and CLI options.

    ``section`` picks a sub-mapping of the YAML file (a run config holds one per stage); a file
    without that section is read whole. ``fixed`` values (CLI options) win when not None.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_yaml(config_file)
        values = data.get(section, data) if section and isinstance(data.get(section), dict) else data
    values = deep_merge(values, parse_overrides(overrides or []))
    values = deep_merge(values, {k: v for k, v in fixed.items() if v is not None})
    return build(cls, values)


class ModelConfig(StageConfig):
    """Keys of every model folder."""

    name: str = Field("", description="model folder under RUN/models (empty = the model's default name)")
    seed: int = Field(0, description="seed for init, shuffling, negatives, masks and the validation sample")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (unset = torch's default)")


class TrainerConfig(ModelConfig):
    """Training keys shared by every Lightning-trained model (families change defaults only)."""

    batch_size: int = Field(128, ge=1, description="training rows (or targets, for TIGER) per batch, length-bucketed")
    optimizer: Literal["adamw", "adafactor"] = Field("adamw", description="optimizer")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="weight decay (on weight matrices, not on embeddings, biases or norms)")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps (inverse_sqrt: constant lr for these steps)")
    schedule: Literal["cosine", "inverse_sqrt", "constant"] = Field("constant", description="lr schedule after warm-up")
    grad_clip: float = Field(1.0, ge=0, description="gradient-norm clip (0 = off)")
    max_epochs: int = Field(10, ge=1, description="epochs over the training data")
    max_steps: int = Field(-1, description="stop after this many steps (-1 = no limit)")
    max_time_min: float | None = Field(None, gt=0, description="stop training after this many minutes (wall time; never "
                                       "for reported comparisons: the result would depend on the machine's load)")
    patience: int = Field(3, ge=1, description="early stopping: validations without a better Recall@10")
    val_every: int = Field(1, ge=1, description="validate every this many epochs")
    val_users: int = Field(10_000, ge=0, description="validation users per check (0 = all): one fixed sample, the same for every model and seed")
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto: 32 on CPU and GPU (these small models train faster in fp32 on a GPU too: docs/scaling.md)")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="where to train")
    compile: bool = Field(False, description="torch.compile the network's forward for training (a one-off compile on the "
                          "first steps; validation and decoding stay eager: benchmarks/results/train.md)")
    loggers: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="training curves beyond logs/metrics.csv (always written): tensorboard "
        "(RUN/models/<name>/tensorboard/), mlflow (a local file store, RUN/mlruns/); pip install 'semid[tracking]'")
    devices: int | Literal["auto"] = Field(
        1, description="processes per machine, one device each (auto: every GPU, or 1 on CPU); batch_size is per process")
    num_nodes: int = Field(1, ge=1, description="machines taking part in one training run (docs/scaling.md)")
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true"] = Field(
        "auto", description="Lightning strategy: auto (DDP when devices × num_nodes > 1), ddp, or ddp that tolerates "
        "parameters a step does not use")

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("devices is a number of processes per machine (1, 2, ...) or 'auto'")


_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")  # set by torchrun, Lightning's launcher, SLURM


def lead_process() -> bool:
    """False in a worker of rank > 0 of a multi-process training run (torchrun, SLURM or Lightning's
    own launcher), which trains alongside rank 0 and writes nothing; True everywhere else."""
    return all(os.environ.get(var, "0").strip() in ("", "0") for var in _RANK_VARS)
