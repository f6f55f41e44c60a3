"""``semid run``: every stage that exists, in order, each reusing its outputs when up to date.

A stage is a function ``(run_config, run_dir, context) -> Path``; later issues append stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from semid.config import StageConfig
from semid.data.config import PrepareConfig
from semid.log import log


class RunConfig(StageConfig):
    """The whole pipeline's config: one section per stage (YAML recipes live in ``configs/``)."""

    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="the prepare stage")


@dataclass
class Context:
    data_dir: Path | None = None
    path: Path | None = None
    force: bool = False
    download_missing: bool = False
    mirror: str | None = None


def _prepare(cfg: RunConfig, run_dir: Path, ctx: Context) -> Path:
    from semid.data import prepare
    from semid.errors import DataError

    try:
        return prepare.run(cfg.prepare, run_dir, data_dir=ctx.data_dir, path=ctx.path, force=ctx.force)
    except DataError as exc:
        if not ctx.download_missing or ctx.path is not None or "not found" not in str(exc):
            raise
        from semid.data.download import ensure_downloaded

        log.info("dataset %s not found under %s: downloading it", cfg.prepare.dataset, ctx.data_dir)
        ensure_downloaded(cfg.prepare.dataset, ctx.data_dir, mirror=ctx.mirror)
        return prepare.run(cfg.prepare, run_dir, data_dir=ctx.data_dir, path=ctx.path, force=ctx.force)


STAGES: list[tuple[str, Callable[[RunConfig, Path, Context], Path]]] = [
    ("prepare", _prepare),
]


def run_all(cfg: RunConfig, run_dir: Path, ctx: Context, until: str | None = None) -> dict[str, Any]:
    done = {}
    for name, fn in STAGES:
        log.info("── stage %s", name)
        done[name] = fn(cfg, run_dir, ctx)
        if name == until:
            break
    return done
