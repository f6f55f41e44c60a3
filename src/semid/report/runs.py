"""The sections of one run folder: its data, Semantic IDs, evaluated models, comparison, training
curves, ranking study and qualitative analysis, each only when its files exist.

A section reached again through another input (the same prepared data, the same Semantic IDs, the
same study) says where it was shown instead of repeating its figures.
"""

from __future__ import annotations

import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from semid.core import artifacts
from semid.core.log import log
from semid.core.run import RunFolder
from semid.evaluate import results as records
from semid.ids.analysis import first_next_item, next_item_text
from semid.report import studies
from semid.report.blocks import Section, code, figure, imported, table
from semid.report.collect import Context, Input, writer

STATS_SKIP = ("reader_notes", "source.files")  # long lists of file names: in data/stats.json itself
ID_FIGURES = (("code_usage.png", "code usage per level"), ("coherence.png", "mean cosine of items sharing a prefix"),
              ("tsne.png", "t-SNE map of the items, coloured by first code"))
ANALYSIS_FILES = (("failures.md", "Failure analysis"), ("codes.md", "What the codes mean"), ("cases.md", "Case studies"))


def sections(inp: Input, ctx: Context) -> list[Section]:
    run = RunFolder(inp.path)
    running = writer(run.root)
    title = f"Run {code(inp.label)}" + (f" (dataset {run.dataset()})" if run.data.is_dir() else "")
    head = Section(title, 2)
    if running:
        ctx.running[inp] = running
        head.add(f"⚠ {running}: what it has not written yet is missing below.")
    out = [head]
    for name, build in (("Data", data), ("Semantic IDs", semantic_ids), ("Comparison", comparison), ("Evaluated models", models),
                        ("Time to quality", curves), ("Ranking study", study), ("Qualitative analysis", analysis)):
        parts = build(inp, run, ctx)
        if parts:
            out.append(Section(name, 3, parts))
            log.info("report: %s: %s", inp.label, name.lower())
        else:
            ctx.absent(inp, name.lower())
    return out


def data(inp: Input, run: RunFolder, ctx: Context) -> list:
    stats_file = run.data / "stats.json"
    if not stats_file.is_file():
        return []
    stats = ctx.json(inp, stats_file)
    manifest = ctx.manifest(inp, run.data) or {}
    key = "data:" + artifacts.fingerprint_value(manifest.get("outputs") or stats)
    before = ctx.first(key, inp.label)
    if before:
        return [f"The same prepared data as {code(before)} (identical outputs of `semid prepare`)."]
    groups: dict[str, list[str]] = {}
    for k, v in flatten(stats):
        if not k.startswith(STATS_SKIP):
            group, _, rest = k.partition(".")
            groups.setdefault(group, []).append(f"{rest} = {show(v)}" if rest else show(v))
    rows = [[k, "; ".join(v) or "–"] for k, v in groups.items()]
    return [f"From {code(stats_file)} (`semid prepare`):", table(["statistic", "value"], rows)]


def show(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    return f"{v:,}" if isinstance(v, int) else "–" if v is None else str(v)


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"split": {"protocol": …}}`` → ``[("split.protocol", …)]``; short lists of numbers are joined."""
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if prefix == "time_range" and isinstance(obj, list) and len(obj) == 2:
        return [(prefix, " to ".join(time.strftime("%Y-%m-%d", time.gmtime(t)) for t in obj))]
    if isinstance(obj, list):
        return [(prefix, ", ".join(map(str, obj)))] if len(obj) <= 8 else [(prefix, f"{len(obj)} values")]
    return [(prefix, obj)]


def semantic_ids(inp: Input, run: RunFolder, ctx: Context) -> list:
    if not run.ids_root.is_dir():
        return []
    folders = sorted(p for p in run.ids_root.iterdir() if (p / "semantic_ids.parquet").is_file())
    if folders:
        ctx.manifest(inp, run.embed)  # the embeddings the IDs were fitted on (its config names the model)
    rows, figures, notes, unshown = [], [], [], []
    for folder in folders:
        report_file = folder / "ids_report.json"
        ctx.manifest(inp, folder)
        if not report_file.is_file():
            notes.append(f"{code(folder.name)}: not analysed (`semid ids analyze --out {inp.label}` writes its report)")
            continue
        r = ctx.json(inp, report_file)
        ctx.manifest(inp, folder, "report.manifest.json")
        rows.append(id_row(folder.name, r))
        before = ctx.first("ids:" + artifacts.fingerprint_value(r.get("inputs") or r), f"{inp.label} ids/{folder.name}")
        if before:
            notes.append(f"{code(folder.name)}: the same Semantic IDs and embeddings as {code(before)}; its figures are shown there")
            continue
        if not any(fnmatch(folder.name, pat) for pat in ctx.id_figures):
            unshown.append(code(folder.name))
            continue
        figures += [figure(folder / f, f"{folder.name}: {what}", f"{inp.label}-{folder.name}-{Path(f).stem}") for f, what in ID_FIGURES]
    if unshown:
        notes.append(f"Figures not shown (`--id-figures {','.join(ctx.id_figures)}`) for {', '.join(unshown)}: "
                     "each folder's `report.md` and PNGs have them")
    if not rows and not notes:
        return []
    head = ["IDs", "method", "items", "L × K", "recon. cosine", "collisions", "largest group", "level-1 perplexity",
            "coherence by prefix", "random pairs", "level-1 category purity", "next item shares code 1 (val, × chance)"]
    parts = ["From each ID folder's `ids_report.json` (`semid ids analyze`): collisions before the extra code; coherence = mean "
             "cosine of item embeddings sharing a prefix of 1, 2, … codes; purity = share of items in their first-code "
             "group's commonest top-level category; next item = share of validation users whose target shares its first "
             "code with their last history item, and that share over the share of independent draws.", table(head, rows, 3)]
    return parts + [("- " + "\n- ".join(notes)) if notes else ""] + [f for f in figures if f]


def id_row(name: str, r: dict[str, Any]) -> list[Any]:
    usage = (r.get("usage") or [{}])[0]
    coll = r.get("collisions") or {}
    coherence = r.get("coherence") or {}
    purity = ((r.get("category_purity") or {}).get("prefix") or [{}])[0]
    share = coll.get("collision_share")
    return [name, r.get("method"), r.get("items"), f"{r.get('levels')} × {r.get('codebook_size')}",
            (r.get("reconstruction") or {}).get("mean_cosine"), None if share is None else f"{share:.2%}", coll.get("largest_group"),
            usage.get("perplexity"), " / ".join(f"{c['mean_cosine']:.3f}" for c in coherence.get("prefix", [])),
            coherence.get("random_pairs"), purity.get("top_purity"), next_item_text(first_next_item(r))]


def comparison(inp: Input, run: RunFolder, ctx: Context) -> list:
    return studies.comparison(inp, run.compare, ctx) if (run.compare / "comparison.json").is_file() else []


def models(inp: Input, run: RunFolder, ctx: Context) -> list:
    """Test metrics of every evaluated model folder (``metrics*.json``), next to the papers' rows."""
    files = sorted(run.models_root.glob("*/metrics*.json")) if run.models_root.is_dir() else []
    recs = []
    for f in files:
        m = artifacts.read_json(f)
        if m.get("split") != "test":
            continue
        ctx.keep(inp, f, m)
        ctx.manifest(inp, f.parent)
        info = m.get("model_info") or {}
        tag = f.stem.removeprefix("metrics").lstrip("-")
        recs.append({"dataset": m.get("dataset"), "model": f.parent.name, "loss": info.get("loss"), "preset": info.get("preset"),
                     "setting": tag or None, "seeds": [info.get("seed")], "metrics": m.get("metrics") or {},
                     "metrics_history_removed": m.get("metrics_history_removed"), "hardware": m.get("hardware")})
    if not recs:
        return []
    dataset = recs[0]["dataset"]
    paper = [r for r in records.load_reference(records.reference_path().parent) if r["dataset"] == dataset]
    others = len(files) - len(recs)
    return [f"Test metrics of each model folder as `semid evaluate` wrote them ({len(recs)} file{'s' if len(recs) > 1 else ''} under "
            f"{code(str(run.models_root))}; one seed each, full-catalogue ranking; rows marked (paper) are the papers' own "
            "numbers from `results/reference.json`, in the columns of the protocol each paper used)"
            + (f"; {others} validation-split files (tuning trials) are not listed." if others else "."),
            records.table(recs, paper, dataset)]


def curves(inp: Input, run: RunFolder, ctx: Context) -> list:
    png = figure(run.compare / "time_to_quality.png", "validation Recall@10 against thread-minutes of training",
                 f"{inp.label}-time_to_quality")
    if png is None:
        return []
    meta = run.compare / "time_to_quality.json"
    doc = ctx.json(inp, meta) if meta.is_file() else {}
    estimated = [c["model"] for c in doc.get("curves", []) if c.get("estimated")]
    note = (f" Training time estimated across the resumes of older logs (stitched by each process's seconds per step, "
            f"or placed by steps): {', '.join(estimated)}." if estimated else "")
    return [f"From each model's training logs (`semid curves`, {code(run.compare / 'time_to_quality.json')}).{note}", png]


def study(inp: Input, run: RunFolder, ctx: Context) -> list:
    doc_file = run.study / "results.json"
    return studies.rank_study(inp, doc_file, ctx) if doc_file.is_file() else []


def analysis(inp: Input, run: RunFolder, ctx: Context) -> list:
    """``semid analyze``'s Markdown, as it wrote it (figures beside it); only the first case studies."""
    folder = run.analysis
    if not folder.is_dir():
        return []
    manifest = ctx.manifest(inp, folder)
    parts: list = []
    for name, title in ANALYSIS_FILES:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text()
        if name == "cases.md":
            text, shown, total = first_cases(text, ctx.cases)
            title += f" ({shown} of {total} sampled users; all in {code(path)})"
        parts += [f"#### {title}", *imported(text, folder, name=f"{inp.label}-analysis", demote=3)]
    if parts and manifest is None:
        parts.insert(0, "⚠ `analysis/manifest.json` is missing: `semid analyze` did not finish writing this folder.")
    return parts


def first_cases(text: str, n: int) -> tuple[str, int, int]:
    """The intro and the first ``n`` users (``## User …`` blocks) of ``cases.md``."""
    blocks = text.split("\n## ")
    return "\n## ".join(blocks[: n + 1]), min(n, len(blocks) - 1), len(blocks) - 1


__all__ = ["sections", "flatten", "id_row", "first_cases"]
