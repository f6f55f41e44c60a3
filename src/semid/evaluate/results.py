"""Reported results: one JSON record per model and setting under ``results/<dataset>/``, the
papers' numbers in ``results/reference.json``, and the Markdown tables made from them.

    semid results                      # print the tables
    semid results --update-readme      # rewrite the block between the README's results markers

A record is written only from a real run (:func:`record` copies a ``metrics.json``), never by hand.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from semid.core import artifacts
from semid.core.errors import DataError

COLUMNS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr", "coverage@10")
START, END = "<!-- results:start -->", "<!-- results:end -->"
RANK_START, RANK_END = "<!-- ranking:start -->", "<!-- ranking:end -->"
STUDY = "rank_study.json"


def record(metrics_file: Path, *, root: Path = Path("results"), preset: str | None = None, hardware: str,
           wall_time_s: float | None = None, command: str | None = None, setting: str | None = None,
           notes: str | None = None) -> Path:
    """Write ``root/<dataset>/<model>[-<setting>].json`` from a metrics file of a real run."""
    m = artifacts.read_json(metrics_file)
    info = m.get("model_info", {})
    name = m["model"] + (f"-{setting}" if setting else "")
    rec = {
        "model": m["model"], "kind": m.get("kind"), "loss": info.get("loss"), "params": info.get("params"),
        "dataset": m["dataset"], "preset": preset or info.get("preset"), "setting": setting,
        "split": m["split"], "users": m["users"], "hardware": hardware, "metrics": m["metrics"], "ci95": m["ci95"],
        "protocol": m["protocol"], "beam_size": m["protocol"].get("beam_size"), "seeds": m.get("seeds"),
        "wall_time_s": wall_time_s, "command": command, "ids": info.get("ids"), "training": info.get("training"),
        "machine": m.get("hardware"), "date": time.strftime("%Y-%m-%d"), "notes": notes, "source": "measured",
    }
    out = Path(root) / str(m["dataset"]) / f"{name}.json"
    artifacts.write_json(out, rec)
    return out


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


def table(records: list[dict[str, Any]], reference: list[dict[str, Any]] = (), dataset: str | None = None,
          columns=COLUMNS) -> str:
    """A Markdown table: measured rows, then the papers' rows (marked "paper")."""
    head = "| dataset | model | setting | split | hardware | " + " | ".join(columns) + " |"
    rule = "|" + "---|" * 5 + "---:|" * len(columns)
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"], r["model"], str(r.get("setting")))):
        if dataset and r["dataset"] != dataset:
            continue
        loss = f"loss {r['loss']}" if r.get("loss") else None
        setting = ", ".join(str(x) for x in (r.get("preset"), loss, r.get("setting")) if x)
        rows.append(f"| {r['dataset']} | {r['model']} | {setting or '–'} | {r['split']} | {r['hardware']} | "
                    + " | ".join(_cell(r["metrics"].get(c)) for c in columns) + " |")
    for r in reference:
        if dataset and r["dataset"] != dataset:
            continue
        rows.append(f"| {r['dataset']} | {r['model']} (paper) | {r.get('source', '')} | {r.get('split', 'test')} | paper | "
                    + " | ".join(_cell(r["metrics"].get(c)) for c in columns) + " |")
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
            "split": m["split"], "hardware": "this run", "metrics": m["metrics"]}
    ref_file = reference_path()
    ref = artifacts.read_json(ref_file)["records"] if ref_file.is_file() else []
    ref = [r for r in ref if r["dataset"] == dataset]
    return table([mine], ref, None) + f"\n\nmetrics: {metrics_file}"
