"""``semid compare``: train and evaluate every model of the comparison on one dataset, one table.

    semid compare --dataset beauty                                   # all models, runs/beauty
    semid compare --dataset beauty 'compare.models=[pop,sasrec-ce,tiger]'   # a subset
    semid compare --config configs/compare_beauty.yaml --record results     # the reported comparison

Every model goes through the same run folder (prepare → embed → ids, reused when finished; the
Semantic IDs are one fit, shared by every model and seed), its own training stage and the one
evaluation module, so the rows differ only in the model. The protocol a reviewer asks for:

1. ``tune``: one small grid, the same for every trained row (``lr: [x0.5, x1, x2]`` = half, the
   row's own and twice its learning rate), each point trained at the first seed and scored on the
   **validation** split; the best by validation ``select`` goes on.
2. ``seeds``: the chosen configuration trained once per seed (model init and data order) and
   scored on **test** once; untrained rows (pop, knn) are deterministic and run once.
3. ``baselines``: every row against each named baseline, paired over users and seeds
   (:mod:`semid.experiments.table`), Holm-corrected.

Budgets are in epochs (``budget`` applies to every trained row), never wall-clock; threads are
fixed per cell and recorded; ``jobs`` cells train side by side as separate processes. Finished
cells are reused, so a killed comparison continues where it stopped. Writes
``RUN/compare/comparison.{md,csv,json}`` and ``recall10.png``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator, model_validator

from semid.core.config import ConfigError, ModelConfig, StageConfig
from semid.core.log import log
from semid.core.log import setup as log_setup
from semid.core.run import RunFolder
from semid.core.threads import side_by_side
from semid.core.workers import worker_pool
from semid.evaluate import stage as ev_stage
from semid.experiments import table
from semid.generative.coldstart import check_codes
from semid.ids import train as ids_train
from semid.ids.config import IdsConfig
from semid.models import registry
from semid.models import stage as model_stage


class CompareConfig(StageConfig):
    models: list[str] = Field(default_factory=lambda: list(registry.rows()),
                              description=f"rows to train and evaluate: {', '.join(registry.rows())}")
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-row config overrides, e.g. {sasrec-ce: {dropout: 0.3}}")
    budget: dict[str, Any] = Field(default_factory=dict, description="keys set on every trained row, e.g. {max_epochs: 40, patience: 5}")
    tune: dict[str, list[Any]] = Field(default_factory=dict, description="grid on validation for every trained row; 'x2' = twice the row's value")
    select: str = Field("recall@10", description="validation metric that picks the grid point")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="model seeds (init and data order) per trained row")
    baselines: list[str] = Field(default_factory=list, description="rows every other row is tested against (paired, Holm-corrected)")
    threads: int | None = Field(None, ge=1, description="CPU threads of every cell (unset = each model's default)")
    jobs: int = Field(1, ge=1, description="cells trained side by side, each a process with `threads` threads")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples (users and seeds) for CIs and paired tests")
    permutations: int = Field(10_000, ge=100, description="sign flips of the paired permutation test")
    split: str = Field("test", pattern="^(test|val)$", description="split of the final scores (test or val)")
    beam_size: int = Field(20, ge=1, description="beam size of the generative models")
    cold_start_eps: float | None = Field(None, ge=0, le=1, description="cold-start cap of every model's top k (TIGER §4.4: "
                                         "at most floor(eps·k) items unseen in training; unset: no cap, and "
                                         "generative models add no unseen item)")
    cold_start_codes: int | None = Field(None, ge=1, description="cold-start mode, generative models: leading codes an "
                                         "unseen item must share with a generated ID to join the list (unset: all L)")

    @field_validator("models")
    @classmethod
    def _known(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in registry.rows()]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(map(repr, unknown))}; known: {', '.join(registry.rows())}")
        return models

    @model_validator(mode="after")
    def _baselines_are_rows(self) -> CompareConfig:
        missing = [b for b in self.baselines if b not in self.models]
        if missing:
            raise ValueError(f"baselines {missing} are not among models {self.models}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        check_codes(self.cold_start_eps, self.cold_start_codes)
        return self


def model_config(name: str, cfg: CompareConfig, semantic_ids: str,
                 sections: dict[str, dict[str, Any]] | None = None) -> tuple[registry.ModelSpec, ModelConfig]:
    """(model spec, resolved config) of one comparison row; ``sections``: the run config's sections
    (a model with a section of its own there, as TIGER, starts from it)."""
    if name not in registry.rows():
        raise ConfigError(f"unknown model {name!r} in models; known: {', '.join(registry.rows())}")
    spec, row = registry.rows()[name]
    values = {**(sections or {}).get(spec.kind, {}), **row.settings, "name": name}
    if row.ids == "random":
        values["ids"] = random_ids_name(semantic_ids)
    if spec.trained:
        values.update(cfg.budget)
    values.update(cfg.settings.get(name, {}))
    if cfg.threads is not None:
        values["threads"] = cfg.threads
    return spec, spec.config(**values)


def random_ids_name(semantic_ids: str) -> str:
    """``rqvae-3x256`` → ``random-3x256``: random codes of the same shape."""
    return "random-" + semantic_ids.split("-", 1)[1] if "-" in semantic_ids else f"random-{semantic_ids}"


def grid(base: ModelConfig, tune: dict[str, list[Any]]) -> list[tuple[str, ModelConfig]]:
    """Every grid point of ``tune`` applied to ``base``: (folder-name suffix, config). The point
    equal to ``base`` has no suffix, so it is the row's own folder."""
    if not tune:
        return [("", base)]
    unknown = [k for k in tune if k not in type(base).model_fields]
    if unknown:
        raise ConfigError(f"compare.tune: unknown key(s) {unknown} for {type(base).__name__}")
    points = []
    for combo in itertools.product(*(tune[k] for k in tune)):
        values, parts = {}, []
        for key, v in zip(tune, combo):
            own = getattr(base, key)
            if isinstance(v, str) and v.startswith("x"):
                try:
                    factor = float(v[1:])
                except ValueError:
                    raise ConfigError(f"compare.tune.{key}: {v!r} is neither a value nor a factor like 'x2'") from None
                values[key], label = type(own)(own * factor), f"{key}{factor:g}x"
            else:
                values[key], label = v, f"{key}{v}"
            if values[key] != own:
                parts.append(label)
        cfg = type(base)(**(base.model_dump(exclude_unset=True) | values))
        points.append(("-" + "-".join(parts) if parts else "", cfg))
    return points


@dataclass
class Cell:
    """One training + evaluation: a row's config at one seed, scored on one split, in one run folder
    (trained on the Semantic IDs of ``ids_dir``)."""

    row: str
    kind: str
    config: ModelConfig
    split: str
    result: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    ids_dir: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # its evaluation's (beam_size, cold_start_eps, …)
    origin: str = ""  # the folder name this cell was planned under, when it scores a twin another recipe trained

    @property
    def name(self) -> str:
        return self.config.name


def evaluation(cfg: CompareConfig) -> dict[str, Any]:
    """The evaluation settings a comparison (or an experiment's point) scores its cells with."""
    # every key, unset ones too: a cell's settings are merged over the first point's
    return {"beam_size": cfg.beam_size, "cold_start_eps": cfg.cold_start_eps, "cold_start_codes": cfg.cold_start_codes}


def _run_cell(kind: str, values: dict[str, Any], run_dir: str, ids_dir: str, ev: dict[str, Any], force: bool,
              verbose: bool | None = None) -> dict[str, Any]:
    """Train + evaluate one cell (a module-level function, so a worker process can run it)."""
    if verbose is not None:  # a worker process: its own log handler
        log_setup(verbose)
    spec = registry.get(kind)
    cfg = spec.config(**values)
    t0 = time.perf_counter()
    resume = not force and model_stage.killed_run_of(kind, cfg, run_dir, ids=Path(ids_dir))
    if resume:
        log.info("%s: continuing its interrupted training from checkpoints/last.ckpt", cfg.name)
    folder = model_stage.train(kind, cfg, Path(run_dir), force=force, resume=resume, ids=Path(ids_dir))
    stage_s = time.perf_counter() - t0
    metrics = ev_stage.run(ev_stage.EvaluateConfig(model=folder.name, **ev), Path(run_dir), force=force)
    return {"folder": str(folder), "metrics_file": str(metrics), "stage_wall_s": round(stage_s, 1)}


def execute(cells: list[Cell], cfg: CompareConfig, *, force: bool) -> None:
    """Run ``cells`` (``cfg.jobs`` at a time, each in its own process when more than one)."""
    def ev(cell: Cell) -> dict[str, Any]:
        return {"split": cell.split, "threads": cfg.threads, "bootstrap": cfg.bootstrap if cell.split == cfg.split else 0,
                **evaluation(cfg), **cell.settings}

    args = [(c.kind, c.config.model_dump(mode="json"), c.run_dir, c.ids_dir, ev(c), force) for c in cells]
    if cfg.jobs == 1 or len(cells) == 1:
        for i, (cell, a) in enumerate(zip(cells, args), 1):
            log.info("── cell %d/%d: %s (seed %d, %s)", i, len(cells), cell.name, cell.config.seed, cell.split)
            cell.result = _run_cell(*a)
        return
    verbose = log.getEffectiveLevel() <= 10
    log.info("── %d cells, %d side by side", len(cells), cfg.jobs)
    if crowded := side_by_side(min(cfg.jobs, len(cells)), cfg.threads or torch.get_num_threads()):
        log.warning("%s", crowded)
    with worker_pool(cfg.jobs) as pool:
        futures = {pool.submit(_run_cell, *a, verbose): cell for cell, a in zip(cells, args)}
        for done, fut in enumerate(as_completed(futures), 1):  # logged as they finish, not in submission order
            cell = futures[fut]
            cell.result = fut.result()
            log.info("── cell %s (seed %d) done: %d of %d", cell.name, cell.config.seed, done, len(cells))


def choose(cells: list[Cell], row: str, select: str) -> Cell:
    """The grid point with the best validation ``select``; on a tie the row's own configuration,
    then the earlier point."""
    if len(cells) == 1:
        return cells[0]
    return max(cells, key=lambda c: (table.val_score(c, select), c.name == row))


def plan_trials(bases: dict[str, tuple[registry.ModelSpec, ModelConfig]], cfg: CompareConfig, run_dir: Path,
                ids_dir: Path, tag: str = "") -> dict[str, list[Cell]]:
    """Each row's grid points at the first seed, on validation (one point, on the final split's
    seeds later, for a row with nothing to tune). ``tag`` names rows and folders ``<row>@<tag>``."""
    trials: dict[str, list[Cell]] = {}
    for name, (spec, base) in bases.items():
        row = f"{name}@{tag}" if tag else name
        points = grid(base, cfg.tune) if spec.trained else [("", base)]
        trials[row] = [Cell(row, spec.kind, c.model_copy(update={"name": row + suffix, "seed": cfg.seeds[0]}), "val",
                            run_dir=str(run_dir), ids_dir=str(ids_dir), settings=evaluation(cfg)) for suffix, c in points]
    return trials


def plan_final(trials: dict[str, list[Cell]], cfg: CompareConfig) -> list[Cell]:
    """The point chosen on validation, at every seed (untrained rows once), on the final split."""
    final: list[Cell] = []
    for row, cells in trials.items():
        pick = choose(cells, row, cfg.select)
        seeds = cfg.seeds if registry.get(pick.kind).trained else cfg.seeds[:1]
        for s in seeds:
            conf = pick.config.model_copy(update={"seed": s, "name": pick.name + ("" if s == cfg.seeds[0] else f"-s{s}")})
            final.append(Cell(row, pick.kind, conf, cfg.split, run_dir=pick.run_dir, ids_dir=pick.ids_dir,
                              settings=evaluation(cfg)))
    return final


def tune(trials: Mapping[Any, list[Cell]], cfg: CompareConfig, *, force: bool) -> None:
    """Score every row's grid points on validation (rows with a single point skip it)."""
    cells = [c for cells in trials.values() if len(cells) > 1 for c in cells]
    if cells:
        execute(cells, cfg, force=force)


def bases_of(cfg: CompareConfig, run: RunFolder, ids_cfg: IdsConfig, sections: dict[str, dict[str, Any]] | None,
             *, force: bool) -> dict[str, tuple[registry.ModelSpec, ModelConfig]]:
    """Every row's resolved config; the random IDs the random-ID rows need are made here."""
    semantic = ids_cfg.folder_name()
    bases = {name: model_config(name, cfg, semantic, sections) for name in cfg.models}
    if any(getattr(c, "ids", None) == random_ids_name(semantic) for _, c in bases.values()):
        name = None if ids_cfg.name is None else random_ids_name(semantic)  # None: the default random-<L>x<K>
        ids_train.run(ids_cfg.model_copy(update={"method": "random", "name": name}), run, force=force)
    return bases


def run(cfg: CompareConfig, run_dir: Path, ids_cfg: IdsConfig, *, sections: dict[str, dict[str, Any]] | None = None,
        force: bool = False) -> Path:
    """Tune on validation, train every seed, score on test, test the pairs; returns the output folder."""
    run = RunFolder(run_dir)
    t_all = time.perf_counter()
    bases = bases_of(cfg, run, ids_cfg, sections, force=force)
    trials = plan_trials(bases, cfg, run.root, run.ids_dir(ids_cfg.folder_name()))
    tune(trials, cfg, force=force)  # 1. the grid, on validation, at the first seed
    final = plan_final(trials, cfg)  # 2. the chosen configuration at every seed, on the final split
    execute(final, cfg, force=force)
    rows = table.summarise(final, trials, cfg)
    tests = table.paired_tests(final, cfg)
    dataset = rows[0]["dataset"] if rows else run.dataset()
    compute = table.cells_seconds([c for cells in trials.values() for c in cells] + final)
    table.write(run.compare, rows, tests, table.paper_rows(dataset, cfg.models), cfg, time.perf_counter() - t_all, compute)
    return run.compare


__all__ = ["CompareConfig", "run", "model_config", "grid", "random_ids_name", "Cell", "execute", "plan_trials", "plan_final",
           "tune", "bases_of"]
