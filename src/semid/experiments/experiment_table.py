"""An experiment's table: one row per (grid point, model), the statistics of ``semid compare``.

Rows are summarised and tested by :mod:`semid.experiments.table` (mean ± std over seeds, 95% CIs
over users and seeds, paired tests Holm-corrected over the whole recipe), plus what the grid
varies: the point's values, its Semantic IDs' quality (``ids_report.json``: collisions, usage),
the wall time per cell and the recipe's total cost (every cell's training and evaluation, the
losers of the tuning grid included, and the shared stages once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from semid.core import artifacts
from semid.core.figures import pyplot, save
from semid.core.log import log
from semid.core.run import RunFolder
from semid.experiments import table
from semid.ids.analysis import first_next_item, next_item_text

if TYPE_CHECKING:
    from semid.experiments.compare import Cell, CompareConfig
    from semid.experiments.experiment import ExperimentConfig, Point

OUTPUTS = ("experiment.md", "experiment.csv", "experiment.json", "experiment.png")


def _rename(cells: list[Cell], name: str) -> list[Cell]:
    return [dataclasses.replace(c, row=name) for c in cells]


def rows_of(pts: list[Point], finals: list[list[Cell]], cfg: CompareConfig) -> tuple[list[dict[str, Any]], list[Cell]]:
    """Summarised rows (one per point and model) and the final cells under those row names."""
    rows, cells_out = [], []
    for p, final in zip(pts, finals):
        for model in dict.fromkeys(c.row.split("@")[0] for c in final):
            name = f"{model}@{p.label()}" if p.label() else model
            cells = _rename([c for c in final if c.row.split("@")[0] == model], name)
            trial = _rename(next(v for k, v in p.trials.items() if k.split("@")[0] == model), name)
            row = table.summarise(cells, {name: trial}, p.cfg.compare, names=[name])[0]
            row.update(point=p.values, point_label=p.label(), model=model, row=name, run_dir=str(p.run_dir),
                       ids_quality=ids_quality(Path(cells[0].ids_dir)) if cells[0].ids_dir else None,
                       cell_wall_s=round(sum((s["train_wall_s"] or 0) + (s["eval_wall_s"] or 0) for s in row["per_seed"])
                                         + table.cells_seconds([t for t in trial if t.name not in {c.name for c in cells}]), 1))
            rows.append(row)
            cells_out += cells
    return rows, cells_out


def ids_quality(folder: Path) -> dict[str, Any] | None:
    """Collision share, first-level usage and prefix coherence of an ID folder (``semid ids analyze``)."""
    report = folder / "ids_report.json"
    if not report.is_file():
        return None
    r = artifacts.read_json(report)
    usage = r.get("usage") or [{}]
    nxt = first_next_item(r) or {}
    return {"ids": folder.name, "collision_share": (r.get("collisions") or {}).get("collision_share"),
            "level1_used_share": usage[0].get("used_share"), "level1_perplexity": usage[0].get("perplexity"),
            "next_item_share": nxt.get("share"), "next_item_lift": nxt.get("lift")}


def shared_seconds(pts: list[Point]) -> float:
    """Wall seconds of the stages the points share (prepare, embed, IDs), each folder once."""
    folders = set()
    for p in pts:
        run = RunFolder(p.run_dir)
        folders |= {run.data, run.embed, run.ids_dir(p.cfg.ids.folder_name())}
    total = 0.0
    for f in folders:
        m = f / "manifest.json"
        if m.is_file():
            total += float(artifacts.read_json(m).get("wall_time_s") or 0)
    return round(total, 1)


def pairs_of(rows: list[dict[str, Any]], exp: ExperimentConfig, pts: list[Point]) -> tuple[list[tuple[str, str]], list[str]]:
    """(row, baseline row) pairs scored on the same users, and why any asked-for pair was left out.
    A baseline that sets only some grid keys is a baseline per value of the others: with grid
    {dataset: [a, b], method: [x, y]} and baseline {method: x}, (a, y) is tested against (a, x)."""
    by = {(r["point_label"], r["model"]): r for r in rows}
    points_by = {p.label(): p for p in pts}
    pairs, skipped = [], []
    if exp.grid:
        for r in rows:
            b = by.get((baseline_point(points_by[r["point_label"]], exp, pts).label(), r["model"]))
            if b is None or b is r:
                continue
            if (b["run_dir"], b["split"]) != (r["run_dir"], r["split"]):
                skipped.append(f"{r['row']} vs {b['row']}: different data (no paired users)")
                continue
            pairs.append((r["row"], b["row"]))
    for model in exp.baseline_models:
        for r in rows:
            b = by.get((r["point_label"], model))
            if b is not None and b is not r and not {(r["row"], b["row"]), (b["row"], r["row"])} & set(pairs):
                pairs.append((r["row"], b["row"]))
    return pairs, skipped


def identical(pairs: list[tuple[str, str]], cells: list[Cell]) -> tuple[list[tuple[str, str]], list[str]]:
    """The pairs whose rows ranked differently, and a note for each pair that ranked every user the
    same at every seed (an evaluation-only setting, such as the beam or the cold-start cap, that this
    model does not use): testing those would only dilute the Holm correction."""
    by_row: dict[str, list[Cell]] = {}
    for c in cells:
        by_row.setdefault(c.row, []).append(c)

    def ranks(row: str) -> list[pl.DataFrame]:
        return [table._ranks(c.result["metrics_file"]).select("user_id", "rank", "rank_history_removed") for c in by_row[row]]

    keep, same = [], []
    for a, b in pairs:
        ra, rb = ranks(a), ranks(b)
        if len(ra) == len(rb) and all(x.equals(y) for x, y in zip(ra, rb)):
            same.append(f"{a} vs {b}: identical rankings (the setting that differs does not change this model)")
        else:
            keep.append((a, b))
    return keep, same


def baseline_point(point: Point, exp: ExperimentConfig, pts: list[Point]) -> Point:
    """The point ``point`` is tested against: its own values with the baseline's; where no grid point
    has them (explicit points), the first point that has the baseline's values; no baseline: the first."""
    if not exp.baseline:
        return pts[0]
    want = {**point.values, **exp.baseline}
    own = next((p for p in pts if p.values == want), None)
    return own or next((p for p in pts if all(p.values[k] == v for k, v in exp.baseline.items())), pts[0])


def design(exp: dict[str, Any]) -> str:
    """The recipe's points in words: its explicit points, else the grid whose product it runs."""
    if exp.get("points"):
        return "points " + "; ".join(", ".join(f"{k}={v}" for k, v in p.items()) for p in exp["points"])
    return f"grid {exp.get('grid') or '(none)'}"


def _against(exp: ExperimentConfig, pts: list[Point]) -> str:
    if exp.baseline and set(exp.baseline) != set(exp.grid):
        rest = [k for k in exp.grid if k not in exp.baseline]
        return f"Each point against the point with {exp.baseline} and the same {', '.join(rest)} (same model)"
    return f"Each point against the baseline point {exp.baseline or pts[0].values} (same model)"


def _cold_cells(r: dict[str, Any]) -> list[str]:
    """Recall@10 and NDCG@10 on the users whose target is unseen in training (``–`` where not scored)."""
    c = r.get(table.COLD)
    if not c:
        return ["–", "–"]
    return [table.mean_std_ci(c, m) + (f" ({c['users']:,} users)" if m == "recall@10" else "") for m in table.TESTED]


def _cold_columns(c: dict[str, Any]) -> dict[str, Any]:
    """The CSV's cold-target columns of one row (empty values where it was not scored)."""
    return {**{f"{m} (cold targets)": (c.get("mean") or {}).get(m) for m in table.TESTED}, "cold_target_users": c.get("users")}


def markdown(rows: list[dict[str, Any]], keys: list[str]) -> str:
    cold = any(r.get(table.COLD) for r in rows)
    cols = [*keys, "model", "seeds", "Recall@10 (mean ± std [95% CI])", "NDCG@10", "R@10 hist. removed", "N@10 hist. removed",
            *(["R@10 cold targets", "N@10 cold targets"] if cold else []),
            "ID collisions", "next item shares code 1 (val, × chance)", "epochs", "train s (mean a seed)", "cells s (sum over seeds)"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * (len(keys) + 1) + "---:|" * (len(cols) - len(keys) - 1)]
    for r in rows:
        kept, removed = r["history kept"], r["history removed"]
        main = [table.mean_std_ci(kept, m) for m in table.TESTED]
        q = r.get("ids_quality") or {}
        coll = "–" if q.get("collision_share") is None else f"{q['collision_share']:.1%}"
        nxt = next_item_text({"share": q.get("next_item_share"), "lift": q.get("next_item_lift")})
        lines.append("| " + " | ".join([*(str(r["point"].get(k)) for k in keys), r["model"], str(len(r["seeds"])), *main,
                                        table._fmt(removed["mean"]["recall@10"]), table._fmt(removed["mean"]["ndcg@10"]),
                                        *(_cold_cells(r) if cold else []), coll, nxt, table._fmt(r["epochs"], 1), table._fmt(r["train_wall_s"], 0),
                                        table._fmt(r["cell_wall_s"], 0)]) + " |")
    return "\n".join(lines)


def write(out: Path, recipe: Path, exp: ExperimentConfig, pts: list[Point], finals: list[list[Cell]],
          cfg: CompareConfig, wall_s: float) -> Path:
    rows, cells = rows_of(pts, finals, cfg)
    pairs, skipped = pairs_of(rows, exp, pts)
    pairs, same = identical(pairs, cells)
    skipped += same
    tests = table.paired_tests(cells, cfg, pairs=pairs)
    keys = list(exp.grid)
    x_key = exp.plot or (keys[0] if keys else "")
    levers = bool(exp.points) and len(exp.grid.get(x_key, [])) < 2  # a list of levers, not a sweep: no x axis
    base = exp.baseline or (pts[0].values if pts else {})  # as the tests pair them
    spec = exp.model_dump(mode="json")
    name_tests(tests, rows, spec)
    cost = {"cells_s": round(sum(r["cell_wall_s"] for r in rows), 1), "shared_stages_s": shared_seconds(pts)}
    cost["total_s"] = round(cost["cells_s"] + cost["shared_stages_s"], 1)
    prov = artifacts.provenance({"recipe": str(recipe), "experiment": spec})
    md = [f"# Experiment `{recipe.stem}`", "", exp.description.strip(), "",
          f"Recipe `{recipe}` (`semid experiment {recipe.stem}`): {design(spec)} × models {cfg.models} × seeds "
          f"{cfg.seeds}; budget {cfg.budget or 'each model’s own'}; "
          + (f"tuned on validation over {cfg.tune} (select {cfg.select}); " if cfg.tune else "no tuning grid; ")
          + f"scored on {cfg.split}, full-catalogue ranking. Mean ± std over seeds; 95% CIs resample users and seeds."
          + (f" The models are those recipe `{exp.models_from}` trained (its model folders, `<model>@{exp.models_from}.<point>`): "
             "trained once, scored here; their training time is counted in both tables." if exp.models_from else ""), "",
          markdown(rows, keys), ""]
    if tests:
        md += ["## Paired tests", "",
               (_against(exp, pts) if exp.grid else "")
               + (f"; each model against {' and '.join(exp.baseline_models)} within its point" if exp.baseline_models else "")
               + ". " + table.rule(tests, tests[0].get("flips", cfg.permutations)) + ".", "",
               table.tests_markdown(tests), ""]
    if skipped:
        md += ["Not tested: " + "; ".join(skipped) + ".", ""]
    twins = sorted({(c.name, c.origin) for f in finals for c in f if c.origin})
    if twins:
        md += [f"Reused: {len(twins)} cell(s) scored a model folder already trained with exactly their settings, seed and "
               "inputs (another recipe's, or one left by an earlier run of this one), instead of training it again: "
               + "; ".join(f"`{name}` for `{origin}`" for name, origin in twins) + ".", ""]
    commits = sorted({c for r in rows for c in r["git"]})
    md += [f"Cost: {cost['cells_s']:,.0f} s of cells (training + evaluation, tuning losers included, reused cells at their "
           f"original cost) + {cost['shared_stages_s']:,.0f} s of shared stages = {cost['total_s'] / 3600:.2f} h; this "
           f"command ran {wall_s:,.0f} s. Hardware (detected): {artifacts.describe_hardware(prov['hardware'])}{_cells_ran_on(rows, prov)}; "
           f"{cfg.jobs} cell(s) side by side, threads per cell: {cfg.threads or 'model default'}. "
           f"Code: git {', '.join(c[:10] for c in commits)}{' (uncommitted changes)' if any(r['dirty'] for r in rows) else ''}."]
    artifacts.write_text(out / "experiment.md", "\n".join(md) + "\n")
    cold = any(r.get(table.COLD) for r in rows)
    flat = [{**{k: str(r["point"].get(k)) for k in keys}, "model": r["model"], "seeds": len(r["seeds"]),
             **{c: r["history kept"]["mean"][c] for c in table.COLUMNS},
             **{f"{c} std": r["history kept"]["std"][c] for c in table.TESTED},
             **{f"{c} (history removed)": r["history removed"]["mean"][c] for c in table.TESTED},
             **(_cold_columns(r.get(table.COLD) or {}) if cold else {}),
             "collision_share": (r.get("ids_quality") or {}).get("collision_share"),
             "next_item_share": (r.get("ids_quality") or {}).get("next_item_share"),
             "epochs": r["epochs"], "train_wall_s": r["train_wall_s"], "cell_wall_s": r["cell_wall_s"]} for r in rows]
    with artifacts.atomic_path(out / "experiment.csv") as tmp:
        pl.DataFrame(flat, infer_schema_length=None).write_csv(tmp)
    artifacts.write_json(out / "experiment.json", {"recipe": str(recipe), "experiment": exp.model_dump(mode="json"),
                                                   "rows": rows, "tests": tests, "not_tested": skipped, "cost": cost,
                                                   "reused": [{"folder": n, "cell": o} for n, o in twins],
                                                   "wall_time_s": round(wall_s, 1), **prov})
    if rows:
        if levers or not keys:  # one point (a seeds-only recipe, e.g. one category): one row per model
            plot_levers(out / "experiment.png", rows, keys, base)
        else:
            plot(out / "experiment.png", rows, x_key, keys)
    log.info("experiment %s: %d rows, %d paired tests → %s", recipe.stem, len(rows), len(tests), out / "experiment.md")
    return out


def plot(path: Path, rows: list[dict[str, Any]], x_key: str, keys: list[str]) -> None:
    """Recall@10 (95% CI) against ``x_key``: one line per model and combination of the other keys; where
    a split has cold targets, a second panel with their Recall@10."""
    plt = pyplot()
    cold = any(r.get(table.COLD) for r in rows)
    names = list(dict.fromkeys(_line(r, x_key, keys) for r in rows))
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}  # a line keeps its colour in both panels
    n_lines = len(names)
    ncol = min(n_lines, 4 if cold else 2)
    legend_rows = -(-n_lines // ncol)
    height = 4 + 0.16 * legend_rows  # one legend under the panels, so no line hides behind it
    fig, axes = plt.subplots(1, 2 if cold else 1, figsize=(11 if cold else 6.5, height), squeeze=False)
    splits = "/".join(sorted({str(r.get("split", "test")) for r in rows}))
    _panel(axes[0][0], rows, x_key, keys, colours, lambda r: r["history kept"], f"{splits} Recall@10 (mean over seeds, 95% CI)")
    if cold:
        users = {r[table.COLD].get("users") for r in rows if r.get(table.COLD)}
        _panel(axes[0][1], [r for r in rows if r.get(table.COLD)], x_key, keys, colours, lambda r: r[table.COLD],
               "Recall@10 on cold targets" + (f" ({users.pop():,} users)" if len(users) == 1 else ""))
    handles, labels = axes[0][0].get_legend_handles_labels()  # the first panel draws every line
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, (0.16 * legend_rows + 0.04) / height, 1, 1))
    save(fig, path, dpi=120)


def plot_levers(path: Path, rows: list[dict[str, Any]], keys: list[str], baseline: dict[str, Any]) -> None:
    """Recall@10 (95% CI) of each row of a recipe whose points change one lever at a time: one row per
    point and model, named by what it changes from the baseline point, the baseline's mean dashed."""
    plt = pyplot()
    cold = any(r.get(table.COLD) for r in rows)
    changed = keys if baseline else [k for k in keys if len({str(r["point"].get(k)) for r in rows}) > 1]
    names = [_lever(r, changed, baseline) for r in rows]
    fig, axes = plt.subplots(1, 2 if cold else 1, figsize=(12 if cold else 8, 1.4 + 0.32 * len(rows)),
                             squeeze=False, sharey=True)
    splits = "/".join(sorted({str(r.get("split", "test")) for r in rows}))
    _lever_panel(axes[0][0], rows, lambda r: r["history kept"], f"{splits} Recall@10 (mean over seeds, 95% CI)", baseline)
    if cold:
        _lever_panel(axes[0][1], rows, lambda r: r.get(table.COLD), "Recall@10 on cold targets", baseline)
    axes[0][0].set_yticks(range(len(rows)), names, fontsize=8)
    axes[0][0].invert_yaxis()  # the recipe's order, top to bottom
    fig.tight_layout()
    save(fig, path, dpi=120)


def name_tests(tests: list[dict[str, Any]], rows: list[dict[str, Any]], recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Name each paired test's rows (``label``, ``baseline_label``, where not named yet) by the keys
    in which their point differs from the recipe's baseline point (its first point without one),
    not by every key of their folder tags; only for a recipe of explicit ``points``, whose tags are
    long. ``recipe`` is the ``experiment`` section (as in experiment.json); returns ``tests``."""
    if not recipe.get("points") or not rows:
        return tests
    keys, base = list(recipe.get("grid") or {}), recipe.get("baseline") or rows[0]["point"]
    names = {r["row"]: _lever(r, keys, base) for r in rows}
    for t in tests:
        t.setdefault("label", names.get(t["model"], t["model"]))
        t.setdefault("baseline_label", names.get(t["baseline"], t["baseline"]))
    return tests


def _lever(r: dict[str, Any], keys: list[str], baseline: dict[str, Any]) -> str:
    """A row's name in the lever plot: its model and those of ``keys`` whose values differ from the
    baseline point (without a baseline, ``keys`` are the keys that vary at all); without keys, its model."""
    if not keys:
        return r["model"]
    point = r["point"]
    shown = [k for k in keys if not baseline or (k in baseline and point.get(k) != baseline[k])]
    text = ", ".join(f"{k.rsplit('.', 1)[-1]}={point.get(k)}" for k in shown)
    return f"{r['model']}: {text or 'baseline'}"


def _lever_panel(ax, rows: list[dict[str, Any]], stats, xlabel: str, baseline: dict[str, Any]) -> None:
    models = list(dict.fromkeys(r["model"] for r in rows))
    for i, r in enumerate(rows):
        st = stats(r)
        if not st:
            continue
        y = st["mean"]["recall@10"]
        lo, hi = st["ci95"].get("recall@10") or [y, y]
        colour = f"C{models.index(r['model']) % 10}"
        ax.errorbar([y], [i], xerr=[[max(y - lo, 0)], [max(hi - y, 0)]], marker="o", capsize=3, color=colour,
                    linestyle="none")
        if baseline and all(r["point"].get(k) == v for k, v in baseline.items()):
            ax.axvline(y, color=colour, linestyle="--", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)


def _line(r: dict[str, Any], x_key: str, keys: list[str]) -> str:
    """The plot line of a row: its model and the values of the keys other than ``x_key``."""
    rest = ",".join(f"{k.rsplit('.', 1)[-1]}={r['point'][k]}" for k in keys if k != x_key)
    return r["model"] + (f" ({rest})" if rest else "")


def _panel(ax, rows: list[dict[str, Any]], x_key: str, keys: list[str], colours: dict[str, str], stats,
           ylabel: str) -> None:
    xs = list(dict.fromkeys(r["point"][x_key] for r in rows))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    pos = {v: (v if numeric else i) for i, v in enumerate(xs)}
    lines: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault(_line(r, x_key, keys), []).append(r)
    for i, (name, rs) in enumerate(lines.items()):
        rs = sorted(rs, key=lambda r: pos[r["point"][x_key]])
        # categories (datasets, methods) are not a scale: points side by side, no line between them
        shift = 0.0 if numeric else 0.08 * (i - (len(lines) - 1) / 2)
        x = np.array([pos[r["point"][x_key]] + shift for r in rs], dtype=float)
        y = np.array([stats(r)["mean"]["recall@10"] for r in rs])
        ci = [stats(r)["ci95"].get("recall@10") or [v, v] for r, v in zip(rs, y)]
        err = np.clip(np.array([[v - c[0] for v, c in zip(y, ci)], [c[1] - v for v, c in zip(y, ci)]]), 0, None)
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name, color=colours[name],
                    linestyle="-" if numeric else "none")
    # the grid's own values, never 1.5 levels; an unset value (None) is what the config leaves unset
    ax.set_xticks([pos[v] for v in xs], ["unset" if v is None else str(v) for v in xs])
    ax.set_xlabel(x_key)
    ax.set_ylabel(ylabel)


def _cells_ran_on(rows: list[dict[str, Any]], prov: dict[str, Any]) -> str:
    """Where the cells were trained and scored, from their own records, when that is not where this
    command ran (cells trained on a GPU machine and reused here)."""
    here = artifacts.describe_hardware(prov["hardware"])
    seen = sorted({artifacts.describe_hardware(r["hardware"]) for r in rows if r.get("hardware")} - {here})
    return f" (the cells ran on: {'; '.join(seen)})" if seen else ""


__all__ = ["write", "name_tests", "rows_of", "pairs_of", "identical", "markdown", "ids_quality", "OUTPUTS"]
