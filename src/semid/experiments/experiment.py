"""``semid experiment RECIPE``: a grid over any run-level key, with seeds, in one table.

    semid experiment codebooks                          # configs/experiments/codebooks.yaml
    semid experiment ids-vs-random --format csv --path my_data/

A recipe is a run config (the sections of ``semid run`` / ``semid compare``: prepare, embed, ids,
tiger, compare) plus an ``experiment`` section::

    experiment:
      grid: {ids.levels: [3, 4], ids.codebook_size: [256, 512]}   # dotted keys of the run config
      baseline: {ids.levels: 3, ids.codebook_size: 256}             # the point the others are tested against

Each grid point is the run config with the point's values. Its models are ``compare.models``, each
tuned on validation (``compare.tune``) and trained at every seed of ``compare.seeds`` exactly as in
``semid compare`` (its cells, its tables' statistics). Stages that points share are computed once:
points with the same prepare + embed settings share one run folder (``runs/<dataset>`` for a
dataset's default settings, the folder ``semid run`` and ``semid compare`` use, so recipes reuse
their data, embeddings and IDs; ``runs/<dataset>-<digest>`` otherwise); points with the same ID
settings share one ID folder; a model folder ``<model>@<recipe>.<point>`` is trained once however
many evaluation-only points use it (``compare.beam_size``, ``compare.cold_start_eps``, ``compare.cold_start_codes``), and a recipe
with ``models_from: <other recipe>`` scores the other recipe's model folders (a validation recipe's
choice, scored on test by a second recipe, is trained once); a cell whose exact model (kind, settings,
seed, inputs) some other folder of the run already holds scores that folder (recipes that share a
point, such as TIGER on RQ-VAE 3 x 256, train it once). Finished cells are reused and a killed
cell continues from its checkpoint, so a killed experiment continues where it stopped; the cells of
all points run together, ``compare.jobs`` side by side.

Paired tests (bootstrap over users and seeds + sign-flip permutation, Holm over the recipe) are
run only between rows scored on the same users: each point against the ``baseline`` point (same
model), and each model against each ``baseline_model`` within its point.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from semid.core.config import ConfigError, StageConfig, build, deep_merge, read_yaml
from semid.core.log import log
from semid.core.run import SEMANTIC_IDS, RunFolder
from semid.experiments import compare, experiment_table
from semid.experiments.compare import Cell
from semid.models import stage as model_stage
from semid.pipeline import Context, RunConfig, run_all

EVAL_ONLY = ("compare.beam_size", "compare.cold_start_eps", "compare.cold_start_codes")  # grid keys that change the evaluation, not the trained model
RECIPES = Path("configs") / "experiments"


class ExperimentConfig(StageConfig):
    description: str = Field("", description="the question the recipe answers (shown above its table)")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted run-config key → values, e.g. {ids.levels: [3, 4]}")
    baseline: dict[str, Any] = Field(default_factory=dict, description="the grid point every other point is tested against "
                                                                       "(same model); unset: the first point")
    baseline_model: str | list[str] | None = Field(None, description="a model (or a list of models) every other model of the "
                                                   "same point is tested against")
    points: list[dict[str, Any]] = Field(default_factory=list, description="explicit grid points instead of the full product of "
                                         "`grid`, each setting the same dotted keys, e.g. [{ids.method: rqvae, ids.collisions: "
                                         "reencode}, {ids.method: rqvae_cf, ids.collisions: extra_code}]")
    plot: str | None = Field(None, description="grid key on the plot's x axis (default: the first)")
    models_from: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                                    description="name the model folders after this recipe instead of this one "
                                    "(<model>@<models_from>.<point>): a recipe that scores on test the models a "
                                    "validation recipe of the same settings and seeds trained, without training "
                                    "them again (a folder whose settings differ is retrained, never reused)")

    @model_validator(mode="after")
    def _points_agree(self) -> ExperimentConfig:
        if self.points and self.grid and self.grid != _grid_of(self.points):
            raise ValueError("set either grid (every combination) or points (an explicit list), not both")
        keys = list(self.points[0]) if self.points else []
        for i, p in enumerate(self.points):
            if list(p) != keys:
                raise ValueError(f"points[{i}] sets {list(p)}; every point must set the same keys {keys}, in that order")
        return self

    @property
    def baseline_models(self) -> list[str]:
        """``baseline_model`` as a list (empty when unset)."""
        b = self.baseline_model
        return [] if not b else [b] if isinstance(b, str) else list(b)

    def with_points(self) -> ExperimentConfig:
        """Explicit points fill ``grid`` with each key's values (the table's columns); the points
        themselves, not the product, are run."""
        return self.model_copy(update={"grid": _grid_of(self.points)}) if self.points else self


def _grid_of(pts: list[dict[str, Any]]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for p in pts:
        for k, v in p.items():
            if v not in grid.setdefault(k, []):
                grid[k].append(v)
    return grid


@dataclass
class Point:
    """One grid point: its values, its label (folder suffix) and its resolved run config."""

    values: dict[str, Any]
    cfg: RunConfig
    run_dir: Path = Path()
    trials: dict[str, list[Cell]] = field(default_factory=dict)

    def label(self, keys: list[str] | None = None) -> str:
        return label(self.values if keys is None else {k: v for k, v in self.values.items() if k in keys})


def _short(key: str, keys: list[str]) -> str:
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def label(values: dict[str, Any]) -> str:
    """``{ids.levels: 4, ids.codebook_size: 512}`` → ``levels=4,codebook_size=512`` (a folder-safe name)."""
    def fmt(v: Any) -> str:
        return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    out = ",".join(f"{_short(k, list(values))}={fmt(v)}" for k, v in values.items())
    if "/" in out or out.startswith("."):
        raise ConfigError(f"experiment.grid: the point {values} cannot name a folder (no '/' or leading '.')")
    return out


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def read_recipe(recipe: str | Path) -> tuple[Path, dict[str, Any], ExperimentConfig]:
    """(file, run-config values, experiment section) of a recipe given by path or by name."""
    path = Path(recipe)
    if not path.is_file():
        named = RECIPES / f"{recipe}.yaml"
        if not named.is_file():
            known = sorted(p.stem for p in RECIPES.glob("*.yaml")) if RECIPES.is_dir() else []
            raise ConfigError(f"no recipe {str(recipe)!r}: neither a file nor one of {RECIPES}/: {', '.join(known) or 'none here'}")
        path = named
    data = read_yaml(path)
    exp = build(ExperimentConfig, data.pop("experiment", None) or {}).with_points()
    return path, data, exp


def points(base: dict[str, Any], exp: ExperimentConfig) -> list[Point]:
    """Every grid point's run config (values checked: an unknown key names itself and the point)."""
    keys = list(exp.grid)
    empty = [k for k, v in exp.grid.items() if not v]
    if empty:
        raise ConfigError(f"experiment.grid: {empty} have no values")
    combos = [tuple(p[k] for k in keys) for p in exp.points] if exp.points else \
        list(itertools.product(*(exp.grid[k] for k in keys))) if keys else [()]
    if len(set(map(repr, combos))) < len(combos):
        raise ConfigError(f"experiment.points: a point is listed twice ({exp.points})")
    out = []
    for combo in combos:
        values = dict(zip(keys, combo))
        merged = base
        for k, v in values.items():
            merged = deep_merge(merged, _nest(k, v))
        try:
            cfg = build(RunConfig, merged)
        except ConfigError as exc:
            raise ConfigError(f"experiment point {label(values) or '(base)'}: {exc}") from None
        out.append(Point(values, cfg))
    unknown = [k for k in exp.baseline if k not in keys]
    if unknown:
        raise ConfigError(f"experiment.baseline: {unknown} are not grid keys ({keys})")
    if exp.baseline and not any(all(p.values[k] == v for k, v in exp.baseline.items()) for p in out):
        raise ConfigError(f"experiment.baseline {exp.baseline} is not a grid point")
    if exp.plot is not None and exp.plot not in keys:
        raise ConfigError(f"experiment.plot: {exp.plot!r} is not a grid key ({keys})")
    models = {m for p in out for m in p.cfg.compare.models}
    stray = [m for m in exp.baseline_models if m not in models]
    if stray:
        raise ConfigError(f"experiment.baseline_model: {stray} are not among the recipe's models ({sorted(models)})")
    return out


def own_data(exp: ExperimentConfig) -> ExperimentConfig:
    """The recipe on one folder of the user's data: grid keys that choose the dataset are dropped."""
    keep = {k: v for k, v in exp.grid.items() if k not in ("prepare.dataset", "prepare.format")}
    own = []
    for p in exp.points:
        q = {k: v for k, v in p.items() if k in keep}
        if q not in own:
            own.append(q)
    plot = exp.plot if exp.plot in keep else None  # a dropped dataset axis: the plot takes the first key left
    return exp.model_copy(update={"grid": keep, "points": own, "plot": plot,
                                  "baseline": {k: v for k, v in exp.baseline.items() if k in keep}})


def _digest(values: Any) -> str:
    return hashlib.blake2b(json.dumps(values, sort_keys=True, default=str).encode(), digest_size=3).hexdigest()


def data_settings(cfg: RunConfig) -> str:
    """Digest of what a run folder's shared stages depend on: the prepare and embed settings."""
    return _digest([cfg.prepare.model_dump(mode="json"), cfg.embed.model_dump(mode="json")])


def place(pts: list[Point], runs: Path) -> None:
    """Each point's run folder and ID folder name. A point with a dataset's default prepare + embed
    settings uses ``runs/<dataset>`` (the folder ``semid run`` and ``semid compare`` use, so their
    data, embeddings and IDs are reused); other settings get ``runs/<dataset>-<digest>``, so a
    recipe never rewrites another run's data. Within a folder, ID settings that share
    ``<method>-<L>x<K>`` but differ otherwise get ``<method>-<L>x<K>-<digest>``, except the method's
    defaults, which keep the plain name (so a recipe that varies, say, ``ids.collisions`` shares
    the default point's IDs and models with every other recipe)."""
    for p in pts:
        dataset = p.cfg.prepare.dataset
        default = build(RunConfig, {"prepare": {"dataset": dataset, "format": p.cfg.prepare.format}})
        own = data_settings(p.cfg)
        p.run_dir = runs / (dataset if own == data_settings(default) else f"{dataset}-{own}")
    ids_by_name: dict[tuple[Path, str], set[str]] = {}
    for p in pts:
        ids = p.cfg.ids
        ids_by_name.setdefault((p.run_dir, ids.folder_name()), set()).add(_digest(ids.model_dump(mode="json", include=ids.id_fields())))
    for p in pts:
        ids = p.cfg.ids
        if ids.name is None and len(ids_by_name[(p.run_dir, ids.folder_name())]) > 1 and not _defaults(ids):
            own = _digest(ids.model_dump(mode="json", include=ids.id_fields()))  # same <method>-<L>x<K>, other settings
            p.cfg = p.cfg.model_copy(update={"ids": ids.model_copy(update={"name": f"{ids.folder_name()}-{own}"})})


def _defaults(ids: Any) -> bool:
    """Whether ID settings are their method's defaults at their shape: what `semid ids train method=M
    levels=L codebook_size=K` writes to the plain ``<method>-<L>x<K>`` folder, which other recipes share."""
    plain = type(ids)(method=ids.method, levels=ids.levels, codebook_size=ids.codebook_size)
    return ids.model_dump(mode="json", include=ids.id_fields()) == plain.model_dump(mode="json", include=plain.id_fields())


def run(recipe: str | Path, out: Path | None, ctx: Context, *, runs: Path = Path("runs"),
        overrides: dict[str, Any] | None = None, lock: Any = None) -> Path:
    """Run every grid point's cells (run folders under ``runs``, model folders named
    ``<model>@<recipe>.<point>``) and write the recipe's table into ``out`` (default
    ``runs/experiments/<recipe>``); returns that folder.
    ``lock(folder)`` is called on every run folder before it is written (the CLI's run-folder lock).
    With ``ctx.path`` (the user's own data) a grid over named datasets is dropped."""
    t0 = time.perf_counter()
    path, base, exp = read_recipe(recipe)
    base = deep_merge(base, overrides or {})
    if ctx.path is not None:
        exp = own_data(exp)
    out = out or Path("runs") / "experiments" / path.stem
    pts = points(base, exp)
    place(pts, runs)
    train_keys = [k for k in exp.grid if k not in EVAL_ONLY]
    for i, p in enumerate(pts, 1):
        log.info("── experiment %s: point %d/%d %s (%s)", path.stem, i, len(pts), p.label() or "(base)", p.run_dir)
        if lock is not None:
            lock(p.run_dir)
        run_all(p.cfg, p.run_dir, ctx, until="ids")  # shared stages: reused when another point made them
        run_ = RunFolder(p.run_dir)
        sections = {"tiger": p.cfg.tiger.model_dump(exclude_unset=True)}
        bases = compare.bases_of(p.cfg.compare, run_, p.cfg.ids, sections, force=ctx.force)
        p.trials = compare.plan_trials(bases, p.cfg.compare, run_.root, run_.ids_dir(p.cfg.ids.folder_name()),
                                       tag=".".join(filter(None, [exp.models_from or path.stem, p.label(train_keys)])))
    cfg = pts[0].cfg.compare
    tuning = {(str(p.run_dir), r): c for p in pts for r, c in p.trials.items()}  # rows evaluation-only points share: once
    compare.tune(tuning, cfg, force=ctx.force)
    for p in pts:
        p.trials = {r: tuning[(str(p.run_dir), r)] for r in p.trials}
    finals = [compare.plan_final(p.trials, p.cfg.compare) for p in pts]
    if not ctx.force:
        adopt_twins([c for f in finals for c in f])
    first, then = _split_shared([c for f in finals for c in f])
    compare.execute(first, cfg, force=ctx.force)
    compare.execute(then, cfg, force=ctx.force)
    return experiment_table.write(out, path, exp, pts, finals, cfg, time.perf_counter() - t0)


def plan(recipe: str | Path, *, runs: Path = Path("runs"), overrides: dict[str, Any] | None = None,
         own: bool = False, force: bool = False) -> list[str]:
    """What ``run`` would do now, doing none of it (no stage runs, nothing is written): each point's
    run and ID folders, and each cell's state (``done``, ``reuses <folder>``, ``continues its killed
    run``, ``trains``; a tuned row's trials first), then the counts. ``own``: the user's own data;
    ``force``: every cell retrains, as ``run`` does with ``--force``."""
    path, base, exp = read_recipe(recipe)
    exp = own_data(exp) if own else exp
    pts = points(deep_merge(base, overrides or {}), exp)
    place(pts, runs)
    train_keys = [k for k in exp.grid if k not in EVAL_ONLY]
    planned = []  # per point: (ids folder, trials, cells as run() plans them)
    for p in pts:
        ids_dir = RunFolder(p.run_dir).ids_dir(p.cfg.ids.folder_name())
        sections = {"tiger": p.cfg.tiger.model_dump(exclude_unset=True)}
        bases = {m: compare.model_config(m, p.cfg.compare, p.cfg.ids.folder_name(), sections) for m in p.cfg.compare.models}
        trials = compare.plan_trials(bases, p.cfg.compare, p.run_dir, ids_dir,
                                     tag=".".join(filter(None, [exp.models_from or path.stem, p.label(train_keys)])))
        cells = {row: tr if len(tr) > 1 else compare.plan_final({row: tr}, p.cfg.compare) for row, tr in trials.items()}
        planned.append((ids_dir, trials, cells))
    taken = _names_by_run(c for _, _, cells in planned for row_cells in cells.values() for c in row_cells)
    lines, seen, counts, shown = [], set(), {}, set()
    for p, (ids_dir, trials, cells) in zip(pts, planned):
        fitted = "fitted" if (ids_dir / SEMANTIC_IDS).is_file() else "to fit"
        lines.append(f"{p.label() or '(base)'}  →  {p.run_dir}  ids/{ids_dir.name} ({fitted})")
        holder = RunFolder(p.run_dir).holder() if p.run_dir not in shown else None
        shown.add(p.run_dir)
        if holder:
            lines.append(f"  {p.run_dir} is in use by {holder}: a cell it is training now shows as continuing")
        listed = len(lines)
        for row, row_cells in cells.items():
            tuned = len(trials[row]) > 1
            for c in row_cells:
                if (p.run_dir, c.name) in seen:
                    continue
                seen.add((p.run_dir, c.name))
                what = "trains (--force)" if force else \
                    model_stage.state(c.kind, c.config, p.run_dir, ids=ids_dir, twins=not tuned, taken=taken[c.run_dir])
                counts[what.split(" ")[0]] = counts.get(what.split(" ")[0], 0) + 1
                lines.append(f"  {c.name} (seed {c.config.seed}{', tuning trial on val' if tuned else ''}): {what}")
            if tuned:
                lines.append(f"  {row}: the validation choice then trains at seeds {p.cfg.compare.seeds}")
        if len(lines) == listed:
            lines.append("  the models listed above, scored again with this point's evaluation settings")
    return lines + ["cells: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))]


def adopt_twins(cells: list[Cell]) -> None:
    """Point each cell whose own model folder is not trained yet at a finished folder of its run
    that holds exactly the model it would train (same kind, settings, seed and inputs; typically
    another recipe's: ``ids-vs-random`` and ``collisions`` share TIGER on RQ-VAE 3 x 256). The cell
    keeps its row and is scored as usual; the table names the folders it reused. Folders that cells
    of this run write are never adopted (a stale one may be retrained under another seed first)."""
    taken = _names_by_run(cells)
    for c in cells:
        found = model_stage.twin(c.kind, c.config, Path(c.run_dir), ids=Path(c.ids_dir) if c.ids_dir else None,
                                 taken=taken[c.run_dir])
        if found:
            log.info("%s (seed %d): the same model is already trained in %s; scoring that folder", c.name, c.config.seed, found)
            c.origin, c.config = c.name, c.config.model_copy(update={"name": found})


def _names_by_run(cells: Iterable[Cell]) -> dict[str, set[str]]:
    """Run folder → the model folders the cells write there (never adopted as another cell's twin)."""
    out: dict[str, set[str]] = {}
    for c in cells:
        out.setdefault(c.run_dir, set()).add(c.name)
    return out


def _split_shared(cells: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """Cells to run first (one per model folder) and the rest (folders trained by the first batch,
    evaluated again under another evaluation-only setting), so no two processes train one folder."""
    first, rest, seen = [], [], set()
    for c in cells:
        key = (c.run_dir, c.name)
        (rest if key in seen else first).append(c)
        seen.add(key)
    return first, rest


__all__ = ["ExperimentConfig", "Point", "read_recipe", "points", "place", "run", "plan", "label", "EVAL_ONLY"]
