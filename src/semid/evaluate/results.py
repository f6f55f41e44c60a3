"""Reported results: one JSON record per model and setting under ``results/<dataset>/``, the
papers' numbers in ``results/reference.json``, and the Markdown tables made from them.

    semid results                      # print the tables
    semid results --update-readme      # rewrite the block between the README's results markers

A record is written only from a real run (:func:`record` copies a ``metrics.json``,
:func:`record_comparison` a finished ``semid compare``), never by hand; its provenance (git commit
and dirty flag, versions, detected hardware, wall times, the run's dates, seeds, the command) is
what the code wrote during the run, and a run from a tree with uncommitted changes is refused
unless told to mark it so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semid.core import artifacts
from semid.core.errors import DataError
from semid.core.run import RunFolder

COLUMNS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr", "coverage@10")
REMOVED = ("recall@10", "ndcg@10")  # the history-removed protocol's columns of the README table
START, END = "<!-- results:start -->", "<!-- results:end -->"
RANK_START, RANK_END = "<!-- ranking:start -->", "<!-- ranking:end -->"
STUDY = "rank_study.json"


PROVENANCE = ("git", "versions", "hardware", "command", "date", "seeds", "protocol", "train_wall_s", "eval_wall_s")


def check_clean(git: list[dict[str, Any]], allow_dirty: bool) -> bool:
    """True when some run came from a tree with uncommitted changes; refused unless ``allow_dirty``."""
    dirty = any(g.get("dirty") for g in git)
    if any(g.get("commit") is None for g in git) and not allow_dirty:
        raise DataError("the run's git commit is unknown (not run from a semid checkout): a record must name the code "
                        "that produced it; pass --allow-dirty to record it marked as such")
    if dirty and not allow_dirty:
        raise DataError("the run came from a working tree with uncommitted changes, so no commit reproduces it: commit "
                        "and rerun (finished stages are reused), or pass --allow-dirty to record it marked dirty")
    return dirty


def record(metrics_file: Path, *, root: Path = Path("results"), setting: str | None = None,
           allow_dirty: bool = False) -> Path:
    """``root/<dataset>/<model>[-<setting>].json`` from one evaluation's metrics file (one seed).
    Provenance (commit, versions, hardware, wall times, dates, command) comes from the files the
    code wrote during the run, never from flags."""
    m = artifacts.read_json(metrics_file)
    info = m.get("model_info", {})
    training = info.get("training") or {}
    dirty = check_clean([m.get("git") or {}], allow_dirty)
    name = m["model"] + (f"-{setting}" if setting else "")
    rec = {
        "model": m["model"], "kind": m.get("kind"), "loss": info.get("loss"), "params": info.get("params"),
        "dataset": m["dataset"], "preset": info.get("preset"), "setting": setting, "split": m["split"],
        "users": m["users"], "seeds": [info.get("seed")], "metrics": m["metrics"], "ci95": m["ci95"],
        "metrics_history_removed": m.get("metrics_history_removed"), "ci95_history_removed": m.get("ci95_history_removed"),
        "protocol": m["protocol"], "ids": info.get("ids"), "training": training,
        "train_wall_s": m.get("train_wall_s"), "eval_wall_s": m.get("rank_wall_s"), "trained": m.get("trained"),
        "git": m.get("git"), "dirty": dirty, "versions": m.get("versions"), "hardware": m.get("hardware"),
        "command": m.get("command"), "date": m.get("date"), "source": "measured",
        **stage_times(Path(metrics_file), m),
    }
    out = Path(root) / str(m["dataset"]) / f"{name}.json"
    artifacts.write_json(out, rec)
    return out


def stage_times(metrics_file: Path, m: dict[str, Any]) -> dict[str, Any]:
    """Each stage's wall time behind one evaluation, from the manifests its run folder's stages wrote
    (prepare, embed, the IDs' fit and analysis, training; evaluation from the metrics file), their
    sum, and the distinct commands that ran them: one command (``semid run``) means the sum is that
    pipeline's time; stages reused from earlier commands are named by theirs. Empty when the model
    folder is not inside a run folder's ``models/``."""
    model = metrics_file.parent
    run = RunFolder(model.parent.parent)
    if model.parent != run.models_root or not (run.data / artifacts.MANIFEST).is_file():
        return {}
    ids = run.ids_dir(Path(str((m.get("model_info") or {}).get("ids") or "-")).name)
    manifests = {"prepare": artifacts.load_manifest(run.data), "embed": artifacts.load_manifest(run.embed),
                 "ids": artifacts.load_manifest(ids), "train": artifacts.load_manifest(model),
                 "ids analyze": artifacts.load_manifest(ids, "report.manifest.json")}  # semid.ids.analyze.MANIFEST
    stages, commands = {}, []
    for stage, doc in manifests.items():
        if doc is not None:
            stages[stage] = doc.get("wall_time_s")
            commands.append(doc.get("command"))
    stages["evaluate"] = m.get("rank_wall_s")
    commands.append(m.get("command"))
    total = round(sum(v for v in stages.values() if v is not None), 1)
    return {"stages_wall_s": stages, "stages_total_s": total, "stages_commands": sorted({c for c in commands if c}, key=str)}


def record_experiment(folder: Path, *, root: Path = Path("results"), allow_dirty: bool = False) -> list[Path]:
    """The tables and plot of a finished ``semid experiment`` under ``root/experiments/<recipe>/``,
    refused (unless ``allow_dirty``) when any cell came from a tree with uncommitted changes."""
    exp = artifacts.read_json(Path(folder) / "experiment.json")
    if not exp["rows"]:
        raise DataError(f"{folder}/experiment.json has no rows to record")
    metrics = [artifacts.read_json(Path(s["metrics_file"])) for r in exp["rows"] for s in r["per_seed"]]
    dirty = check_clean([m.get("git") or {} for m in metrics] + [exp.get("git") or {}], allow_dirty)
    dest = Path(root) / "experiments" / Path(exp["recipe"]).stem
    written = []
    for name in ("experiment.md", "experiment.csv", "experiment.json", "experiment.png"):
        src = Path(folder) / name
        if src.is_file():
            if name == "experiment.json":
                artifacts.write_json(dest / name, {**artifacts.read_json(src), "dirty": dirty, "source": "measured"})
            else:
                artifacts.write_bytes(dest / name, src.read_bytes())
            written.append(dest / name)
    return written


def record_comparison(folder: Path, *, root: Path = Path("results"), allow_dirty: bool = False) -> list[Path]:
    """One record per row of a finished ``semid compare`` (its seeds, both protocols, paired tests
    against the baselines), plus the comparison's tables and plot and, when ``semid curves`` drew it,
    its time-to-quality curve, under ``root/<dataset>/`` (so a report can be made from ``results/``
    alone, without the run folder's training logs)."""
    comp = artifacts.read_json(Path(folder) / "comparison.json")
    rows = comp["rows"]
    if not rows:
        raise DataError(f"{folder}/comparison.json has no rows to record")
    dirty = check_clean([m.get("git") or {} for r in rows for m in map(artifacts.read_json, (s["metrics_file"] for s in r["per_seed"]))]
                         + [comp.get("git") or {}], allow_dirty)
    dest = Path(root) / str(rows[0]["dataset"])
    written = []
    for r in rows:
        kept, removed = r["history kept"], r["history removed"]
        rec = {"model": r["model"], "kind": r["kind"], "loss": r["loss"], "params": r["params"], "ids": r["ids"],
               "dataset": r["dataset"], "split": r["split"], "users": r["users"], "seeds": r["seeds"],
               "metrics": kept["mean"], "metrics_std": kept["std"], "ci95": kept["ci95"],
               "metrics_history_removed": removed["mean"], "metrics_history_removed_std": removed["std"],
               "ci95_history_removed": removed["ci95"],
               "protocol": {"ranking": "full catalogue", "targets_per_user": 1, "metrics": "history items left in the list "
                            "(TIGER's protocol)", "metrics_history_removed": "history items removed (the baselines' papers')",
                            "seeds": "mean (and sample std) over seeds; CI: bootstrap over users and seeds"},
               "trials": r["trials"], "tuned": r["tuned"], "epochs": r["epochs"], "steps": r["steps"],
               "stopped_by": r["stopped_by"], "train_wall_s": r["train_wall_s"], "eval_wall_s": r["eval_wall_s"],
               "threads": r["threads"], "per_seed": r["per_seed"],
               "tests": [t for t in comp["tests"] if r["model"] in (t["model"], t["baseline"])],
               "git": {"commit": r["git"][0] if len(r["git"]) == 1 else r["git"], "dirty": r["dirty"]}, "dirty": dirty,
               "versions": comp.get("versions"), "hardware": r["hardware"], "command": comp.get("command"),
               "date": min(s["trained"] or s["evaluated"] for s in r["per_seed"]), "recorded": comp.get("date"),
               "source": "measured", "record_of": "comparison.json"}
        path = dest / f"{r['model']}.json"
        artifacts.write_json(path, rec)
        written.append(path)
    for name in ("comparison.md", "comparison.csv", "comparison.json", "recall10.png", "time_to_quality.png",
                 "time_to_quality.json"):
        if (Path(folder) / name).is_file():
            artifacts.write_bytes(dest / name, (Path(folder) / name).read_bytes())
            written.append(dest / name)
    return written


def load_records(root: Path = Path("results")) -> list[dict[str, Any]]:
    root = Path(root)
    if not root.is_dir():
        return []
    records = (artifacts.read_json(p) for p in sorted(root.glob("*/*.json")))
    # other studies (e.g. rank_study.json) keep their own records; these tables take retrieval metrics
    return [r for r in records if isinstance(r, dict) and isinstance(r.get("metrics"), dict)]


def load_reference(root: Path = Path("results")) -> list[dict[str, Any]]:
    path = Path(root) / "reference.json"
    if not path.is_file():
        return []
    return artifacts.read_json(path)["records"]


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def _hardware(rec: dict[str, Any]) -> str:
    hw = rec.get("hardware")
    return artifacts.describe_hardware(hw) if isinstance(hw, dict) else str(hw or "–")


def table(records: list[dict[str, Any]], reference: list[dict[str, Any]] = (), dataset: str | None = None,
          columns=COLUMNS) -> str:
    """A Markdown table: measured rows (mean over seeds, both protocols), then the papers' rows
    (marked "paper"), each in the columns of the protocol its paper used."""
    head = ("| dataset | model | setting | seeds | " + " | ".join(columns) + " | "
            + " | ".join(f"{c} (history removed)" for c in REMOVED) + " | hardware |")
    rule = "|---|---|---|---:|" + "---:|" * (len(columns) + len(REMOVED)) + "---|"
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"], r["model"], str(r.get("setting")))):
        if dataset and r["dataset"] != dataset:
            continue
        loss = f"loss {r['loss']}" if r.get("loss") else None
        setting = ", ".join(str(x) for x in (r.get("preset"), loss, r.get("setting")) if x)
        removed = r.get("metrics_history_removed") or {}
        rows.append(f"| {r['dataset']} | {r['model']} | {setting or '–'} | {len(r.get('seeds') or [None])} | "
                    + " | ".join(_cell(r["metrics"].get(c)) for c in columns) + " | "
                    + " | ".join(_cell(removed.get(c)) for c in REMOVED) + f" | {_hardware(r)} |")
    for r in reference:
        if dataset and r["dataset"] != dataset:
            continue
        kept = r.get("protocol", "history kept") == "history kept"
        rows.append(f"| {r['dataset']} | {r['model']} (paper) | {r.get('source', '')} | – | "
                    + " | ".join(_cell(r["metrics"].get(c) if kept else None) for c in columns) + " | "
                    + " | ".join(_cell(None if kept else r["metrics"].get(c)) for c in REMOVED) + " | paper |")
    return "\n".join([head, rule, *rows])


def ranking_table(root: Path = Path("results")) -> str:
    """The ranking study in brief: AUC per representation (history on, largest table) and the claims."""
    rows = ["| dataset | representation | rows | AUC all | AUC cold | AUC tail |", "|---|---|---:|---:|---:|---:|"]
    claims = ["| dataset | claim (Singh et al.) | verdict |", "|---|---|---|"]
    for path in sorted(Path(root).glob(f"*/{STUDY}")):
        study = artifacts.read_json(path)
        ds = study.get("dataset", path.parent.name)
        best: dict[str, dict[str, dict]] = {}
        for r in study["summary"]:
            if not r["history"]:
                continue
            cur = best.setdefault(r["representation"], {}).get(r["slice"])
            if cur is None or r["table_size"] >= cur["table_size"]:
                best[r["representation"]][r["slice"]] = r
        for rep, by_slice in best.items():
            rows.append(f"| {ds} | {rep} | {by_slice['all']['rows']:,} | "
                        + " | ".join(_cell((by_slice.get(sl) or {}).get("auc")) for sl in ("all", "cold", "tail")) + " |")
        claims += [f"| {ds} | {c['claim']} | {c['verdict']} |" for c in study.get("claims", [])]
    if len(rows) == 2:
        return ""
    return "\n".join(rows) + "\n\n" + "\n".join(claims)


def _replace_block(text: str, start: str, end: str, body: str, readme: Path) -> str:
    if start not in text or end not in text:
        raise DataError(f"{readme} has no markers {start} … {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return before + start + body + end + after


def update_readme(readme: Path, root: Path = Path("results")) -> None:
    """Replace the blocks between the README's results (and ranking) markers with current tables."""
    text = Path(readme).read_text()
    body = ("\n_Generated by `semid results --update-readme` from `results/*/*.json`; rows marked "
            "(paper) are the papers' own numbers from `results/reference.json`._\n\n"
            + table(load_records(root), load_reference(root)) + "\n")
    text = _replace_block(text, START, END, body, readme)
    if RANK_START in text:
        rank = ("\n_Generated by `semid results --update-readme` from `results/*/rank_study.json`: test AUC with "
                "history, at each representation's largest table size, mean of 3 seeds._\n\n" + ranking_table(root) + "\n")
        text = _replace_block(text, RANK_START, RANK_END, rank, readme)
    artifacts.write_text(readme, text)


def reference_path() -> Path:
    """``results/reference.json`` of the working directory, else of the source checkout."""
    here = Path("results") / "reference.json"
    return here if here.is_file() else Path(__file__).resolve().parents[3] / "results" / "reference.json"


def run_table(metrics_file: Path, dataset: str) -> str:
    """This run's numbers next to the papers' (marked "paper"), for ``semid run``."""
    m = artifacts.read_json(metrics_file)
    info = m.get("model_info", {})
    mine = {"dataset": m["dataset"], "model": m["model"], "preset": info.get("preset"), "setting": None,
            "split": m["split"], "hardware": m.get("hardware"), "metrics": m["metrics"], "seeds": [info.get("seed")],
            "metrics_history_removed": m.get("metrics_history_removed")}
    ref_file = reference_path()
    ref = artifacts.read_json(ref_file)["records"] if ref_file.is_file() else []
    ref = [r for r in ref if r["dataset"] == dataset]
    return table([mine], ref, None) + f"\n\nmetrics: {metrics_file}"
