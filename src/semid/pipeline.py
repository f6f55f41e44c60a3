"""``semid run``: every stage that exists, in order, each reusing its outputs when up to date.

A stage is a function ``(run_config, run_dir, context) -> Path``; later issues append stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from semid.core.config import StageConfig
from semid.core.errors import DataError
from semid.core.log import log
from semid.core.run import RunFolder
from semid.data import prepare
from semid.data.config import PrepareConfig
from semid.data.download import ensure_downloaded
from semid.embed import encode
from semid.embed.config import EmbedConfig
from semid.evaluate import stage as evaluate
from semid.evaluate.stage import EvaluateConfig
from semid.experiments.compare import CompareConfig
from semid.ids import analyze as ids_analyze
from semid.ids import train as ids_train
from semid.ids.config import IdsConfig
from semid.models import stage as model_stage
from semid.models.tiger.config import TigerConfig

# TIGER's `cpu` preset scored higher on validation with IDs that carry collaborative signal than with
# text-only RQ-VAE IDs on Beauty and Sports (results/experiments/ids-beauty-tiger, ids-categories-tiger)
DEFAULT_IDS_METHOD = "rqvae_cf"


class RunConfig(StageConfig):
    """The whole pipeline's config: one section per stage (YAML recipes live in ``configs/``)."""

    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="the prepare stage")
    embed: EmbedConfig = Field(default_factory=EmbedConfig, description="the embed stage (item texts → vectors)")
    ids: IdsConfig = Field(default_factory=lambda: IdsConfig(method=DEFAULT_IDS_METHOD),
                           description=f"the Semantic ID stage (train + analyze); method {DEFAULT_IDS_METHOD} unless set")
    tiger: TigerConfig = Field(default_factory=TigerConfig, description="TIGER training (preset cpu by default)")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="evaluation of the trained model on test")
    compare: CompareConfig = Field(default_factory=CompareConfig, description="`semid compare`: the models of the comparison table")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """The pipeline's Semantic IDs are ``rqvae_cf`` unless ``ids.method`` is set (also when other ``ids`` keys
        are). The toy dataset (300 items) defaults to 3 × 16 codes (500 RQ-VAE steps) and the `tiny` TIGER
        preset: a run of about a minute with IDs that group items (3 × 256 codes would give nearly every toy
        item its own first code). Keys set explicitly win."""
        if not isinstance(data, dict):
            return data
        if data.get("ids") is None or isinstance(data["ids"], dict):
            data = {**data, "ids": {"method": DEFAULT_IDS_METHOD, **(data.get("ids") or {})}}
        if isinstance(data.get("prepare"), dict) and data["prepare"].get("dataset") == "toy":
            data = {**data, "ids": {"codebook_size": 16, "steps": 500, **data["ids"]},
                    "tiger": {"preset": "tiny", **(data.get("tiger") or {})}}
        return data

    @model_validator(mode="after")
    def _codes_within_levels(self) -> RunConfig:
        """A cold-start match on more codes than the IDs have is refused before anything trains."""
        for name, section in (("compare", self.compare), ("evaluate", self.evaluate)):
            if section.cold_start_codes is not None and section.cold_start_codes > self.ids.levels:
                raise ValueError(f"{name}.cold_start_codes={section.cold_start_codes} exceeds ids.levels={self.ids.levels}: "
                                 "an unseen item can share at most the IDs' levels (the dedup code excluded)")
        return self


@dataclass
class Context:
    data_dir: Path | None = None
    path: Path | None = None
    force: bool = False
    download_missing: bool = False
    mirror: str | None = None
    resume: bool = False  # continue an interrupted training from its last finished epoch


def _prepare(cfg: RunConfig, run: RunFolder, ctx: Context) -> Path:
    try:
        return prepare.run(cfg.prepare, run.root, data_dir=ctx.data_dir, path=ctx.path, force=ctx.force)
    except DataError as exc:
        if not ctx.download_missing or ctx.path is not None or "not found" not in str(exc):
            raise
        log.info("dataset %s not found under %s: downloading it", cfg.prepare.dataset, ctx.data_dir)
        ensure_downloaded(cfg.prepare.dataset, ctx.data_dir, mirror=ctx.mirror)
        return prepare.run(cfg.prepare, run.root, data_dir=ctx.data_dir, path=ctx.path, force=ctx.force)


def _embed(cfg: RunConfig, run: RunFolder, ctx: Context) -> Path:
    return encode.run(cfg.embed, run.root, force=ctx.force)


def _ids(cfg: RunConfig, run: RunFolder, ctx: Context) -> Path:
    folder = ids_train.run(cfg.ids, run, force=ctx.force)
    ids_analyze.run(cfg.ids, run, force=ctx.force)
    return folder


def _tiger(cfg: RunConfig, run: RunFolder, ctx: Context) -> Path:
    return model_stage.train("tiger", cfg.tiger, run, ids=ids_train.ids_dir(run, cfg.ids), force=ctx.force,
                             resume=ctx.resume and (run.model_dir(cfg.tiger.name) / "checkpoints" / "last.ckpt").is_file())


def _evaluate(cfg: RunConfig, run: RunFolder, ctx: Context) -> Path:
    ev = cfg.evaluate if cfg.evaluate.model == cfg.tiger.name else cfg.evaluate.model_copy(update={"model": cfg.tiger.name})
    return evaluate.run(ev, run, force=ctx.force)


STAGES: list[tuple[str, Callable[[RunConfig, RunFolder, Context], Path]]] = [
    ("prepare", _prepare),
    ("embed", _embed),
    ("ids", _ids),
    ("tiger", _tiger),
    ("evaluate", _evaluate),
]


def run_all(cfg: RunConfig, run_dir: Path, ctx: Context, until: str | None = None) -> dict[str, Any]:
    done = {}
    run = RunFolder(run_dir)
    for name, fn in STAGES:
        log.info("── stage %s", name)
        done[name] = fn(cfg, run, ctx)
        if name == until:
            break
    return done
