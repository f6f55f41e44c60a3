"""Sections of what summarises many runs: a comparison (``compare/comparison.json``), an experiment
(``experiment.json``), the ranking study (``study/results.json`` or ``results/<dataset>/rank_study.json``)
and a results folder holding the records of all three.

Tables are made by the functions that wrote them first (:func:`semid.experiments.table.markdown`,
:func:`semid.experiments.experiment_table.markdown`, :func:`semid.evaluate.results.table`);
figures are the PNGs beside the JSON, drawn here (by :mod:`semid.rank.plots`) only for a recorded
study whose own folder is not at hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semid.core import artifacts
from semid.core.run import RunFolder
from semid.evaluate import results as records
from semid.evaluate.results import STUDY
from semid.experiments import experiment_table
from semid.experiments import table as comparison_table
from semid.rank import plots
from semid.report.blocks import Part, Section, code, figure, table
from semid.report.collect import EXPERIMENT_JSON, Context, Input

CURVES = "time_to_quality.png"  # a recorded comparison's curve (`semid curves`)
STUDY_FIGURES = (("auc_by_representation.png", "test AUC by representation, overall and cold-start (95% CI over seeds)",
                  plots.auc_bars),
                 ("delta_auc_vs_table_size.png", "per-list AUC change against random hashing, by table size", plots.delta_vs_size))


def comparison(inp: Input, folder: Path, ctx: Context) -> list[Part]:
    path = folder / "comparison.json"
    comp = ctx.json(inp, path)
    rows, paper, tests, cfg = comp.get("rows") or [], comp.get("paper") or [], comp.get("tests") or [], comp.get("config") or {}
    if not rows:
        return [f"{code(path)} has no rows."]
    before = ctx.first("comparison:" + artifacts.fingerprint_value(rows), str(path))
    if before:
        return [f"The same comparison as {code(before)}, shown there."]
    r0 = rows[0]
    parts: list[Part] = [
        f"From {code(path)} (`semid compare`): dataset {r0['dataset']}, {r0['users']:,} {r0['split']} users, full-catalogue "
        f"ranking, one target per user; mean ± std over seeds {cfg.get('seeds')}, 95% CI over users and seeds. Rows marked "
        "(paper) are the papers' own numbers (`results/reference.json`), each under the protocol its paper used."]
    for protocol in comparison_table.PROTOCOLS:
        parts += [f"**{protocol.capitalize()}** ({comparison_table.PROTOCOL_NOTE[protocol]}):",
                  comparison_table.markdown(rows, paper, protocol)]
    parts.append(figure(folder / "recall10.png", "Recall@10 by model under both protocols (95% CI); dashed: the papers",
                        f"{inp.label}-{folder.name}-recall10"))
    if tests:
        parts += [f"Paired tests against {', '.join(cfg.get('baselines') or [])} on the same users ("
                  + comparison_table.rule(tests, tests[0].get("flips", 10_000)) + "):", comparison_table.tests_markdown(tests)]
    parts.append(cost_line(comp, rows))
    return [p for p in parts if p]


def cost_line(doc: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Wall time, detected hardware and code of a comparison or an experiment, as they recorded it."""
    commits = sorted({str(c)[:10] for r in rows for c in r.get("git") or []})
    dirty = " (uncommitted changes)" if any(r.get("dirty") for r in rows) else ""
    return (f"Wall time of the command {doc.get('wall_time_s', '–')} s; hardware (detected): "
            f"{_hardware(doc)}; code: git {', '.join(commits) or '–'}{dirty}.")


def experiment(inp: Input, folder: Path, ctx: Context, level: int = 2) -> list[Section]:
    path = folder / EXPERIMENT_JSON
    exp = ctx.json(inp, path)
    recipe = Path(str(exp.get("recipe", folder.name))).stem
    grid = (exp.get("experiment") or {}).get("grid") or {}
    keys, rows = list(grid), exp.get("rows") or []
    tests = experiment_table.name_tests(exp.get("tests") or [], rows, exp.get("experiment") or {})  # records before labels too
    sec = Section(f"Experiment {code(recipe)}" + (f" ({code(inp.label)})" if level == 2 else ""), level)
    before = ctx.first("experiment:" + artifacts.fingerprint_value(rows), str(path))
    if before:
        return [sec.add(f"The same experiment as {code(before)}, shown there.")]
    x_key = (exp.get("experiment") or {}).get("plot") or (keys[0] if keys else None)
    sec.add((exp.get("experiment") or {}).get("description", "").strip(),
            f"From {code(path)} (`semid experiment {recipe}`): {experiment_table.design(exp.get('experiment') or {})}; "
            "one row per grid point and model, mean ± "
            "std over seeds, 95% CI over users and seeds.",
            experiment_table.markdown(rows, keys) if rows else "_No rows._",
            figure(folder / "experiment.png", f"Recall@10 (95% CI) against {x_key}"
                   + ("; right: on the cold targets" if any(r.get(comparison_table.COLD) for r in rows) else ""),
                   f"{inp.label}-{recipe}-experiment"))
    if tests:
        sec.add(f"Paired tests between rows scored on the same users (Holm over the recipe's {len(tests)} tests):",
                comparison_table.tests_markdown(tests))
    if exp.get("not_tested"):
        sec.add("Not tested: " + "; ".join(exp["not_tested"]) + ".")
    cost = exp.get("cost") or {}
    if cost:
        sec.add(f"Cost: {cost.get('cells_s', 0):,.0f} s of cells (training + evaluation, tuning losers included) + "
                f"{cost.get('shared_stages_s', 0):,.0f} s of shared stages = {cost.get('total_s', 0) / 3600:.2f} h. " + cost_line(exp, rows))
    return [sec]


def rank_study(inp: Input, doc_file: Path, ctx: Context) -> list[Part]:
    doc = ctx.json(inp, doc_file)
    summary = doc.get("summary") or []
    before = ctx.first("study:" + artifacts.fingerprint_value(summary), str(doc_file))
    if before:
        return [f"The same study as {code(before)} (identical results), shown there."]
    p = doc.get("protocol") or {}
    parts: list[Part] = [
        f"From {code(doc_file)} (`semid rank study`, the grid of Singh et al.): dataset {doc.get('dataset')}, split "
        f"{(p.get('split') or {}).get('split', '–')}; {p.get('test_events')} test lists ({p.get('cold_events')} cold, "
        f"{p.get('tail_events')} tail), {p.get('eval_lists')}; seeds {(p.get('grid') or {}).get('seeds')}; wall time "
        f"{doc.get('wall_time_s')} s for the whole grid.",
        "**Claims** (paired tests on the per-list AUC, Holm-adjusted over the study's claim comparisons):",
        "\n".join(f"- **{c['verdict']}**: {c['claim']}. {c['figures']}" for c in doc.get("claims") or []),
        f"**Per-list AUC** (mean over seeds; overall / cold-start), {history_word(summary)} history:", auc_table(summary)]
    sids = (doc.get("collisions") or {}).get("sids")
    if sids:
        parts.append(f"SID collisions: {sids['items_in_collision']:,} of {sids['items']:,} items ({sids['collision_share']:.1%}) "
                     f"share their Semantic ID with another item (largest group {sids['largest_group']}).")
    return [*parts, *study_figures(inp, doc, doc_file, ctx)]


def history_word(summary: list[dict[str, Any]]) -> str:
    return "with" if any(s["history"] for s in summary) else "without"


def auc_table(summary: list[dict[str, Any]]) -> str:
    """Representation × table size of ``auc_user`` (overall / cold), the main setting (with history when run)."""
    hist = any(s["history"] for s in summary)
    mine = [s for s in summary if s["history"] == hist]
    swept = sorted({s["table_size"] for s in mine if s["representation"] == "hash"})
    by = {(s["representation"], s["table_size"], s["slice"]): s["auc_user"] for s in mine}

    def pair(rep: str, t: int) -> str:
        return " / ".join(f"{by.get((rep, t, sl), float('nan')):.4f}" for sl in ("all", "cold"))

    rows = []
    order = list(plots.COLORS)
    for rep in sorted(dict.fromkeys(s["representation"] for s in mine), key=lambda r: order.index(r) if r in order else len(order)):
        sizes = sorted({s["table_size"] for s in mine if s["representation"] == rep})
        cells = [pair(rep, t) if t in sizes else "–" for t in swept]
        rows.append([rep, *cells, ", ".join(pair(rep, t) + (f" ({t:,} rows)" if t else "") for t in sizes if t not in swept) or "–"])
    return table(["representation", *(f"T = {t:,}" for t in swept), "one table size"], rows)


def study_figures(inp: Input, doc: dict[str, Any], doc_file: Path, ctx: Context) -> list[Part]:
    """The study's plots: beside its results, else in the study folder it was recorded from when
    that still holds the same results, else drawn here from the summary."""
    folder = doc_file.parent
    if doc_file.name == STUDY:
        origin = RunFolder(doc["run_dir"]).study if doc.get("run_dir") and Path(doc["run_dir"]).is_dir() else ctx.scratch
        same = (origin / "results.json").is_file() and artifacts.read_json(origin / "results.json").get("summary") == doc.get("summary")
        folder = origin if same else ctx.scratch / f"{doc.get('dataset')}-study"
    out: list[Part] = []
    for name, caption, draw in STUDY_FIGURES:
        if not (folder / name).is_file() and folder.is_relative_to(ctx.scratch):
            draw(doc["summary"], folder / name)
        out.append(figure(folder / name, caption, f"{inp.label}-{doc.get('dataset')}-{Path(name).stem}"))
    return [f for f in out if f]


def curves(inp: Input, png: Path, ctx: Context) -> list[Part]:
    """A recorded time-to-quality curve (``semid curves``, copied by ``--record``), with the model
    folder behind each line."""
    meta = png.with_suffix(".json")
    doc = ctx.json(inp, meta) if meta.is_file() else None
    lines = [f"{c.get('label', c.get('model'))}: `{c.get('folder', c.get('model'))}`, {c.get('threads', 1)} thread(s)"
             for c in (doc or {}).get("curves", []) if isinstance(c, dict)]
    return [f"From the models' training logs (`semid curves`, recorded as {code(png)})"
            + (": " + "; ".join(lines) + "." if lines else "."),
            figure(png, "validation Recall@10 against thread-minutes of training", f"{inp.label}-{png.parent.name}-time_to_quality")]


def results_sections(inp: Input, ctx: Context) -> list[Section]:
    """A results folder: per dataset its model records, comparison and ranking study; then its experiments."""
    root = inp.path
    out = [Section(f"Records in {code(inp.label)}", 2, [
        f"What `--record` copied into {code(inp.label)} from finished runs (see its README.md); none is typed by hand."])]
    reference = records.load_reference(root)
    for ds in sorted(d for d in root.iterdir() if d.is_dir() and d.name != "experiments"):
        recs = [r for r in (ctx.json(inp, f) for f in sorted(ds.glob("*.json"))
                                      if f.name not in ("comparison.json", STUDY, "time_to_quality.json"))
                if isinstance(r, dict) and isinstance(r.get("metrics"), dict)]
        if recs:
            out.append(Section(f"{ds.name}: recorded models", 3, [
                f"One record per model under {code(ds)} (mean over its seeds), next to the papers' rows:",
                records.table(recs, reference, ds.name)]))
        else:
            ctx.absent(inp, f"{ds.name}: model records")
        for name, title, build in (("comparison.json", "comparison", lambda f: comparison(inp, f.parent, ctx)),
                                   (CURVES, "time to quality", lambda f: curves(inp, f, ctx)),
                                   (STUDY, "ranking study", lambda f: rank_study(inp, f, ctx))):
            if (ds / name).is_file():
                out.append(Section(f"{ds.name}: {title}", 3, build(ds / name)))
            else:
                ctx.absent(inp, f"{ds.name}: {title}")
    for exp in sorted((root / "experiments").glob(f"*/{EXPERIMENT_JSON}")):
        out += experiment(inp, exp.parent, ctx, level=3)
    spent = costs(inp, root, ctx)
    if spent:
        out.append(Section("What the records cost", 3, spent))
    return out


def costs(inp: Input, root: Path, ctx: Context) -> list[Part]:
    """One row per recorded comparison and experiment: its compute as it recorded it, and the sum."""
    rows = []
    for f in sorted(root.glob("*/comparison.json")):
        doc = ctx.json(inp, f)
        cells = _seconds(doc.get("cells_compute_s"))
        rows.append([f"{f.parent.name} comparison", cells, None, cells / 3600 if cells is not None else None,
                     _seconds(doc.get("wall_time_s")), _hardware(doc), str(doc.get("date", "–"))[:10]])
    for f in sorted((root / "experiments").glob(f"*/{EXPERIMENT_JSON}")):
        doc = ctx.json(inp, f)
        cost = doc.get("cost") or {}
        total = cost.get("total_s")
        rows.append([f"experiment {Path(str(doc.get('recipe', f.parent.name))).stem}", _seconds(cost.get("cells_s")),
                     _seconds(cost.get("shared_stages_s")), float(total) / 3600 if isinstance(total, (int, float)) else None,
                     _seconds(doc.get("wall_time_s")), _hardware(doc), str(doc.get("date", "–"))[:10]])
    if not rows:
        return []
    cells, shared = sum(r[1] or 0 for r in rows), sum(r[2] or 0 for r in rows)
    unknown = [r[0] for r in rows if r[1] is None]
    rows.append(["sum", cells, shared, (cells + shared) / 3600, None, "", ""])
    return [f"Compute of each record in {code(inp.label)} as its command measured it: training and evaluation of "
            "its cells (tuning losers included), and its shared stages (data, embeddings, IDs; a comparison records "
            "its cells only). A cell or a shared stage that several recipes share was computed once and counts in "
            "each of them at its original cost, so the sum is more than `make results` takes; the wall time is that "
            "of the command's last invocation, which reused what earlier ones had finished."
            + (f" Not recorded, so not in the sum: {', '.join(unknown)}." if unknown else ""),
            table(["record", "cells s", "shared stages s", "total h", "wall s (last invocation)", "hardware (detected)",
                   "date"], rows, digits=2)]


def _seconds(value: Any) -> int | None:
    return round(float(value)) if isinstance(value, (int, float)) else None


def _hardware(doc: dict[str, Any]) -> str:
    hw = doc.get("hardware")
    return artifacts.describe_hardware(hw) if isinstance(hw, dict) else "–"


__all__ = ["comparison", "experiment", "rank_study", "results_sections", "auc_table"]
