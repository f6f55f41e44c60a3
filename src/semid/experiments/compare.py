"""``semid compare``: train and evaluate every model of the comparison on one dataset, one table.

    semid compare --dataset beauty                                   # all models, runs/beauty
    semid compare --dataset beauty 'compare.models=[pop,sasrec-ce,tiger]'   # a subset
    semid compare --dataset beauty --config configs/compare_beauty.yaml --record

Every model goes through the same run folder (prepare → embed → ids, reused when finished), its
own training stage, and the one evaluation module (full-catalogue ranking, bootstrap CIs), so
the rows differ only in the model. Finished models and evaluations are reused. Writes
``RUN/compare/comparison.{md,csv,json}`` and ``recall10.png``; with ``record`` also one JSON
record per model under ``results/<dataset>/``. The papers' numbers are separate, labelled rows.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import Field, field_validator
from safetensors import safe_open

from semid.core import artifacts
from semid.core.config import ConfigError, ModelConfig, StageConfig
from semid.core.figures import pyplot, save
from semid.core.log import log
from semid.core.run import RunFolder
from semid.evaluate import stage as ev_stage
from semid.evaluate.results import load_reference, reference_path
from semid.ids import train as ids_train
from semid.ids.config import IdsConfig
from semid.models import registry
from semid.models import stage as model_stage

COLUMNS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr", "coverage@10")


class CompareConfig(StageConfig):
    models: list[str] = Field(default_factory=lambda: list(registry.rows()),
                              description=f"rows to train and evaluate: {', '.join(registry.rows())}")
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-row config overrides, e.g. {sasrec-ce: {max_epochs: 50}}")
    threads: int | None = Field(None, ge=1, description="CPU threads for every model (unset = each model's default)")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of users for the 95% CIs")
    split: str = Field("test", pattern="^(test|val)$", description="split to evaluate on (test or val)")
    beam_size: int = Field(20, ge=1, description="beam size of the generative models")

    @field_validator("models")
    @classmethod
    def _known(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in registry.rows()]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(map(repr, unknown))}; known: {', '.join(registry.rows())}")
        return models


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
    values.update(cfg.settings.get(name, {}))
    if cfg.threads is not None:
        values.setdefault("threads", cfg.threads)
    return spec, spec.config(**values)


def random_ids_name(semantic_ids: str) -> str:
    """``rqvae-3x256`` → ``random-3x256``: random codes of the same shape."""
    return "random-" + semantic_ids.split("-", 1)[1] if "-" in semantic_ids else f"random-{semantic_ids}"


def run(cfg: CompareConfig, run_dir: Path, ids_cfg: IdsConfig, *, sections: dict[str, dict[str, Any]] | None = None,
        force: bool = False) -> Path:
    """Train + evaluate each row (reusing finished ones); write the comparison; returns its folder."""
    run = RunFolder(run_dir)
    semantic = ids_cfg.folder_name()
    rows, t_all = [], time.perf_counter()
    for i, name in enumerate(cfg.models, 1):
        log.info("── compare %d/%d: %s", i, len(cfg.models), name)
        spec, mcfg = model_config(name, cfg, semantic, sections)
        if getattr(mcfg, "ids", None) == random_ids_name(semantic):
            ids_train.run(ids_cfg.model_copy(update={"method": "random", "name": None}), run, force=force)
        t0 = time.perf_counter()
        folder = model_stage.train(spec.kind, mcfg, run, force=force, ids=run.ids_dir(semantic))
        fit_s = time.perf_counter() - t0
        ev = ev_stage.EvaluateConfig(model=folder.name, split=cfg.split, beam_size=cfg.beam_size,
                                     bootstrap=cfg.bootstrap, threads=cfg.threads)
        metrics_file = ev_stage.run(ev, run, force=force)
        rows.append(row(name, folder, metrics_file, fit_s))
    dataset = rows[0]["dataset"] if rows else run.dataset()
    write(run.compare, rows, paper_rows(dataset, cfg.models), cfg, time.perf_counter() - t_all)
    return run.compare


def row(name: str, folder: Path, metrics_file: Path, fit_s: float) -> dict[str, Any]:
    meta = artifacts.read_json(folder / "config.json")
    m = artifacts.read_json(metrics_file)
    info, training = m.get("model_info", {}), meta.get("training") or {}
    return {"model": name, "kind": meta.get("kind"), "loss": info.get("loss"), "ids": _short_ids(info.get("ids")),
            "dataset": m["dataset"], "split": m["split"], "users": m["users"], "source": "measured",
            **{c: m["metrics"].get(c) for c in COLUMNS},
            "recall@10_ci95": m["ci95"].get("recall@10"), "ndcg@10_ci95": m["ci95"].get("ndcg@10"),
            "train_wall_s": training.get("train_wall_s"), "eval_wall_s": m.get("rank_wall_s"),
            "stage_wall_s": round(fit_s, 1), "epochs": training.get("epochs"),
            "threads": training.get("threads") or (meta.get("config") or {}).get("threads"),
            "params": meta["params"] if "params" in meta else _count_params(folder), "metrics_file": str(metrics_file),
            "folder": str(folder)}


def _count_params(folder: Path) -> int | None:
    """Parameters in ``model.safetensors`` (for folders written before config.json carried the count)."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(str(weights), framework="np") as f:
        return int(sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys()))


def _short_ids(ids: Any) -> str | None:
    return Path(str(ids)).name if ids else None


def paper_rows(dataset: str, models: list[str]) -> list[dict[str, Any]]:
    wanted = {registry.rows()[m][1].paper for m in models if registry.rows()[m][1].paper}
    ref = load_reference(reference_path().parent)
    return [{"model": f"{r['model']} (paper)", "dataset": r["dataset"], "source": r.get("source", "paper"),
             **{c: r["metrics"].get(c) for c in COLUMNS}} for r in ref if r["dataset"] == dataset and r["model"] in wanted]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(rows: list[dict[str, Any]], paper: list[dict[str, Any]]) -> str:
    cols = ["model", "loss", "ids", *COLUMNS, "train s", "threads", "params", "source"]
    lines = ["| " + " | ".join(cols) + " |", "|---|---|---|" + "---:|" * (len(cols) - 4) + "---|"]
    for r in rows:
        ci = r.get("recall@10_ci95")
        r10 = _fmt(r["recall@10"]) + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
        cells = [r["model"], _fmt(r["loss"]), _fmt(r["ids"]), *(r10 if c == "recall@10" else _fmt(r[c]) for c in COLUMNS),
                 _fmt(r["train_wall_s"], 0), _fmt(r.get("threads") or "default"), _fmt(r["params"]), "measured"]
        lines.append("| " + " | ".join(cells) + " |")
    for p in paper:
        cells = [p["model"], "", "", *(_fmt(p.get(c)) for c in COLUMNS), "", "", "", p["source"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(out: Path, rows: list[dict[str, Any]], paper: list[dict[str, Any]], cfg: CompareConfig, wall_s: float) -> None:
    md = ["# Model comparison", "",
          f"Dataset {rows[0]['dataset'] if rows else '?'}, split {cfg.split}, full-catalogue ranking, "
          f"one target per user; Recall@10 with its 95% bootstrap CI over users ({cfg.bootstrap} resamples). "
          "`train s` is the model's training wall time; rows marked (paper) are the papers' own numbers "
          "(results/reference.json), not ours.", "", markdown(rows, paper), "",
          f"hardware: {_machine()}; `threads`: torch CPU threads of the training run. Total wall time of this "
          f"command {wall_s:.0f} s (models already trained and unchanged are reused, not retrained)."]
    artifacts.write_text(out / "comparison.md", "\n".join(md) + "\n")
    flat = [{k: (str(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows + paper]
    with artifacts.atomic_path(out / "comparison.csv") as tmp:
        pl.DataFrame(flat, infer_schema_length=None).write_csv(tmp)
    artifacts.write_json(out / "comparison.json", {"rows": rows, "paper": paper, "config": cfg.model_dump(mode="json"),
                                                   "hardware": artifacts.hardware(), "wall_time_s": round(wall_s, 1)})
    if rows:
        plot(out / "recall10.png", rows, paper)
    log.info("compare: %d models → %s", len(rows), out / "comparison.md")


def _machine() -> str:
    hw = artifacts.hardware()
    gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ", no GPU"
    return f"{hw.get('cpus')} CPUs ({hw.get('machine')}), {hw.get('memory_gib')} GiB RAM{gpu}"


def plot(path: Path, rows: list[dict[str, Any]], paper: list[dict[str, Any]]) -> None:
    plt = pyplot()
    names = [r["model"] for r in rows]
    vals = [r["recall@10"] or 0.0 for r in rows]
    err = [[v - (r["recall@10_ci95"] or [v, v])[0] for v, r in zip(vals, rows)],
           [(r["recall@10_ci95"] or [v, v])[1] - v for v, r in zip(vals, rows)]]
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(rows) + 2), 3.5))
    ax.bar(names, vals, yerr=err, capsize=3, color="tab:blue", label="measured (95% CI)")
    for p in paper:
        if p.get("recall@10") is not None:
            ax.axhline(p["recall@10"], ls="--", lw=0.8, color="gray")
            ax.text(len(rows) - 0.5, p["recall@10"], p["model"], fontsize=7, va="bottom", ha="right", color="gray")
    ax.set_ylabel("Recall@10")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    save(fig, path, dpi=120)


__all__ = ["CompareConfig", "run", "markdown", "model_config"]
