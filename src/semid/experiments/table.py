"""The comparison's numbers: seeds summarised, pairs tested, tables and a plot written.

Each row's seeds give mean ± std of every metric; the 95% CI of Recall@10 and NDCG@10 resamples
users and seeds. Every row is tested against each baseline on the same users
(:func:`semid.evaluate.stats.compare`: paired bootstrap over users and seeds + sign-flip
permutation test), under both protocols, and the tests' p-values (each the larger of the
permutation p and the bootstrap's seed-aware p) are Holm-corrected together. A "better" /
"worse" verdict needs the corrected p and the bootstrap CI to agree. Two rows that scored the
same trained networks (evaluation settings of one model) have their seeds paired.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from semid.core import artifacts, trainlog
from semid.core.figures import pyplot, save
from semid.core.log import log
from semid.core.run import RunFolder
from semid.evaluate import stage as ev_stage
from semid.evaluate import stats
from semid.evaluate.results import load_reference, reference_path
from semid.models import registry

if TYPE_CHECKING:
    from semid.experiments.compare import Cell, CompareConfig

COLUMNS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr", "coverage@10")
TESTED = ("recall@10", "ndcg@10")
# protocol → (metrics key of metrics.json, rank column of ranks.parquet)
PROTOCOLS = {"history kept": ("metrics", "rank"), "history removed": ("metrics_history_removed", "rank_history_removed")}
# users whose target is an item unseen in training (the split's ``cold`` column), scored under the
# history-kept protocol; summarised and tested where the split was made for cold start (items held
# out of training, or a temporal split: ``RunFolder.cold_start_split``), whatever the cold-start cap
COLD = "cold targets"
PROTOCOL_NOTE = {"history kept": "history items left in the ranked list: TIGER's protocol",
                 "history removed": "the user's history items removed from the ranked list: the full-sort protocol of "
                                    "the SASRec / BERT4Rec / GRU4Rec papers"}


def _metrics(cell: Cell) -> dict[str, Any]:
    return artifacts.read_json(Path(cell.result["metrics_file"]))


def val_score(cell: Cell, metric: str) -> float:
    """The grid point's validation score (what ``compare.select`` names)."""
    m = _metrics(cell)["metrics"]
    if metric not in m:
        raise ValueError(f"compare.select: {metric!r} is not a metric; known: {', '.join(m)}")
    return float(m[metric])


@functools.cache
def _ranks(metrics_file: str) -> pl.DataFrame:
    """A cell's ``ranks.parquet``, sorted by user, read once however many metrics and tests use it."""
    path = Path(metrics_file)
    return ev_stage.read_ranks(path.parent / ev_stage.ranks_name(path)).sort("user_id")


def per_user(cells: list[Cell], column: str, metric: str) -> np.ndarray:
    """``[seeds, users]`` per-user values of ``metric`` (users sorted by id, the same for every model)."""
    out, users = [], None
    for cell in cells:
        folder = Path(cell.result["metrics_file"]).parent
        r = _ranks(cell.result["metrics_file"])
        if users is None:
            users = r["user_id"]
        elif not r["user_id"].equals(users):
            raise ValueError(f"{folder}: its users differ from the other seeds' (different split or user sample)")
        out.append(ev_stage.per_user_metric(r[column], metric))
    return np.stack(out)


def same_users(cells: list[Cell], baseline: list[Cell]) -> None:
    """A paired test compares user by user: both rows must have scored the same users (per_user sorts
    them by id), never two splits or two samples that merely have as many users."""
    ours, theirs = (_ranks(c[0].result["metrics_file"])["user_id"] for c in (cells, baseline))
    if not ours.equals(theirs):
        raise ValueError(f"{cells[0].name} and {baseline[0].name} scored different users ({len(ours):,} vs "
                         f"{len(theirs):,}; different split or user sample): they cannot be compared user by user")


def same_networks(cells: list[Cell], baseline: list[Cell]) -> bool:
    """Whether two rows scored the very same model folders, seed by seed (one model at two
    evaluation settings): then their seeds are paired, not drawn apart."""
    def folders(cs: list[Cell]) -> list[str]:
        return [str(Path(c.result["metrics_file"]).parent) for c in cs]
    return folders(cells) == folders(baseline)


@functools.cache
def _cold_users(run_dir: str, split: str) -> pl.Series | None:
    """The users of a run folder's split whose target no training row holds (the split's ``cold``
    column, written by ``semid prepare``); None when it marks none, or the split was not made for
    cold start (a leave-one-out split's few such targets are not a cold-start test)."""
    run = RunFolder(run_dir)
    if not run.cold_start_split():
        return None
    df = run.table(split)
    if "cold" not in df.columns or not df["cold"].any():
        return None
    return df.filter(pl.col("cold"))["user_id"]


def cold_mask(cells: list[Cell]) -> np.ndarray | None:
    """Which of ``per_user``'s users (sorted by id) have a cold target; None when no target is cold."""
    if not cells:
        return None
    c = cells[0]
    users = _cold_users(c.run_dir, c.split)
    if users is None:
        return None
    return _ranks(c.result["metrics_file"])["user_id"].is_in(users.implode()).to_numpy()


def _cold_row(cells: list[Cell], cfg: CompareConfig) -> dict[str, Any] | None:
    mask = cold_mask(cells)
    if mask is None:
        return None
    vals = {m: per_user(cells, "rank", m)[:, mask] for m in TESTED}
    return {"users": int(mask.sum()),
            "mean": {m: float(v.mean()) for m, v in vals.items()},
            "std": {m: float(np.std(v.mean(1), ddof=1)) if len(v) > 1 else 0.0 for m, v in vals.items()},
            "ci95": {m: stats.paired_bootstrap(v, np.zeros((1, v.shape[1])), n_boot=cfg.bootstrap)["ci95"] for m, v in vals.items()}}


def summarise(final: list[Cell], trials: dict[str, list[Cell]], cfg: CompareConfig,
              names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per model (``names``: the rows, default ``cfg.models``): mean ± std over seeds under
    both protocols, CIs, budget and provenance."""
    _ranks.cache_clear()  # this comparison's files, as its cells just wrote them
    _cold_users.cache_clear()
    rows = []
    for name in names or cfg.models:
        cells = [c for c in final if c.row == name]
        recs = [_metrics(c) for c in cells]
        metas = [artifacts.read_json(Path(c.result["folder"]) / "config.json") for c in cells]
        trainings = [_timed(Path(c.result["folder"]), m.get("training") or {}) for c, m in zip(cells, metas)]
        info = recs[0].get("model_info", {})
        row: dict[str, Any] = {
            "model": name, "kind": cells[0].kind, "loss": info.get("loss"), "ids": _short(info.get("ids")),
            "dataset": recs[0]["dataset"], "split": recs[0]["split"], "users": recs[0]["users"],
            "seeds": [c.config.seed for c in cells], "config_name": cells[0].name,
            "trials": len(trials[name]), "tuned": _tuned(trials[name], cells[0], cfg),
            "params": metas[0].get("params"), "threads": trainings[0].get("threads") or cells[0].config.threads,
            "epochs": _mean([t.get("epochs") for t in trainings]), "steps": _mean([t.get("steps") for t in trainings]),
            "stopped_by": sorted({str(t.get("stopped_by")) for t in trainings if t.get("stopped_by")}),
            "train_wall_s": _mean([t.get("train_wall_s") for t in trainings]),
            "eval_wall_s": _mean([r.get("rank_wall_s") for r in recs]),
            "git": sorted({str((r.get("git") or {}).get("commit")) for r in recs}),
            "dirty": any((r.get("git") or {}).get("dirty") for r in recs),
            "hardware": recs[0].get("hardware"),
        }
        for protocol, (key, column) in PROTOCOLS.items():
            values = {c: [float(r[key].get(c, np.nan)) for r in recs] for c in COLUMNS}
            row[protocol] = {"mean": {c: float(np.mean(v)) for c, v in values.items()},
                             "std": {c: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for c, v in values.items()},
                             "ci95": {m: stats.paired_bootstrap(per_user(cells, column, m), np.zeros((1, recs[0]["users"])),
                                                                n_boot=cfg.bootstrap)["ci95"] for m in TESTED}}
        cold = _cold_row(cells, cfg)
        if cold:
            row[COLD] = cold
        row["per_seed"] = [{"seed": c.config.seed, "folder": c.result["folder"], "metrics_file": c.result["metrics_file"],
                            "metrics": r["metrics"], "metrics_history_removed": r["metrics_history_removed"],
                            "epochs": t.get("epochs"), "steps": t.get("steps"), "stopped_by": t.get("stopped_by"),
                            "train_wall_s": t.get("train_wall_s"), "train_time": t.get("train_time"),
                            "eval_wall_s": r.get("rank_wall_s"),
                            "trained": t.get("started"), "evaluated": r.get("date")}
                           for c, r, t in zip(cells, recs, trainings)]
        rows.append(row)
    return rows


def _timed(folder: Path, training: dict[str, Any]) -> dict[str, Any]:
    """``training`` with ``train_wall_s`` over every process of a resumed run (``train_time``: how known)."""
    seconds, how = trainlog.train_seconds(folder, training)
    return training | {"train_wall_s": seconds, "train_time": how}


def cells_seconds(cells: list[Cell]) -> float:
    """Training + evaluation seconds of these cells as measured when they ran, every process of a
    resumed run included (reused cells count their original cost: what the grid took to compute)."""
    total, trained = 0.0, set()
    for c in cells:
        if not c.result:
            continue
        folder = Path(c.result["folder"])
        if folder not in trained:  # a folder scored on validation and on test was trained once
            trained.add(folder)
            seconds, _ = trainlog.train_seconds(folder, (artifacts.read_json(folder / "config.json").get("training") or {}))
            total += float(seconds or 0)
        total += float(artifacts.read_json(Path(c.result["metrics_file"])).get("rank_wall_s") or 0)
    return round(total, 1)


def _tuned(points: list[Cell], pick: Cell, cfg: CompareConfig) -> dict[str, Any] | None:
    if len(points) < 2:
        return None
    return {"grid": cfg.tune, "select": f"validation {cfg.select}",
            "scores": {c.name: round(val_score(c, cfg.select), 5) for c in points},
            "chosen": {k: getattr(pick.config, k) for k in cfg.tune}}


def _mean(values: list[Any]) -> float | None:
    v = [x for x in values if isinstance(x, (int, float))]
    return round(float(np.mean(v)), 1) if v else None


def _short(ids: Any) -> str | None:
    return Path(str(ids)).name if ids else None


def baseline_pairs(models: list[str], baselines: list[str]) -> list[tuple[str, str]]:
    """(row, baseline) for every row against each baseline, each pair once."""
    pairs, done = [], set()
    for base in baselines:
        for name in models:
            if name != base and frozenset((name, base)) not in done:
                done.add(frozenset((name, base)))
                pairs.append((name, base))
    return pairs


def permutations_for(n_tests: int, asked: int, alpha: float = 0.05) -> int:
    """Sign flips for ``n_tests`` Holm-corrected tests: ``asked``, or more where the smallest p the
    permutation test can give, 1 / (flips + 1), times ``n_tests`` would exceed ``alpha / 2`` (then no
    test of a large recipe could ever read "better" or "worse")."""
    return max(asked, math.ceil(2 * n_tests / alpha))


def paired_tests(final: list[Cell], cfg: CompareConfig, pairs: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every (row, baseline) pair (default: every row against each of ``cfg.baselines``), both
    protocols, Recall@10 and NDCG@10, and the users with cold targets where the split was made for
    cold start; Holm over all."""
    by_row: dict[str, list[Cell]] = {}
    for c in final:
        by_row.setdefault(c.row, []).append(c)
    plan = [(name, base, cold_mask(by_row[name]) if cold_mask(by_row[base]) is not None else None)
            for name, base in (baseline_pairs(cfg.models, cfg.baselines) if pairs is None else pairs)]
    flips = permutations_for(sum(len(PROTOCOLS) * len(TESTED) + (len(TESTED) if m is not None else 0) for *_, m in plan),
                             cfg.permutations)
    tests = []
    for name, base, mask in plan:
        same_users(by_row[name], by_row[base])
        paired = same_networks(by_row[name], by_row[base])
        cold: list[dict[str, Any]] = []
        for protocol, (_, column) in PROTOCOLS.items():
            for metric in TESTED:
                a, b = per_user(by_row[name], column, metric), per_user(by_row[base], column, metric)
                res = stats.compare(a, b, n_boot=cfg.bootstrap, n_perm=flips, paired_seeds=paired)
                tests.append({"model": name, "baseline": base, "protocol": protocol, "metric": metric,
                              "seeds": [a.shape[0], b.shape[0]], "seeds_paired": paired, "flips": flips, **res})
                if mask is not None and protocol == "history kept":  # the same users' values, cold targets only
                    res = stats.compare(a[:, mask], b[:, mask], n_boot=cfg.bootstrap, n_perm=flips, paired_seeds=paired)
                    cold.append({"model": name, "baseline": base, "protocol": COLD, "metric": metric,
                                 "seeds": [a.shape[0], b.shape[0]], "seeds_paired": paired, "users": int(mask.sum()),
                                 "flips": flips, **res})
        tests += cold
    for t, p in zip(tests, stats.holm([t["p_test"] for t in tests])):
        t["p_holm"] = p
        t["verdict"] = stats.verdict(t["delta"], t["ci95"], p)
    return tests


def paper_rows(dataset: str, models: list[str]) -> list[dict[str, Any]]:
    wanted = {registry.rows()[m][1].paper for m in models if registry.rows()[m][1].paper}
    ref = load_reference(reference_path().parent)
    return [{"model": f"{r['model']} (paper)", "dataset": r["dataset"], "source": r.get("source", "paper"),
             "protocol": r.get("protocol", "history kept"), "metrics": r["metrics"]}
            for r in ref if r["dataset"] == dataset and r["model"] in wanted]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""


def mean_std_ci(block: dict[str, Any], metric: str) -> str:
    """``mean ± std [CI]`` of one metric of a row's protocol block (``{"mean", "std", "ci95"}``)."""
    return f"{block['mean'][metric]:.4f} ± {block['std'][metric]:.4f}{_ci(block['ci95'].get(metric))}"


def markdown(rows: list[dict[str, Any]], paper: list[dict[str, Any]], protocol: str) -> str:
    cols = ["model", "seeds", "Recall@10 (mean ± std [95% CI])", "NDCG@10", "R@5", "N@5", "R@20", "N@20", "MRR",
            "cov@10", "epochs", "train s", "trials", "params"]
    lines = ["| " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * (len(cols) - 2)]
    for r in rows:
        p = r[protocol]
        main = [mean_std_ci(p, m) for m in TESTED]
        rest = [_fmt(p["mean"][c]) for c in ("recall@5", "ndcg@5", "recall@20", "ndcg@20", "mrr", "coverage@10")]
        lines.append("| " + " | ".join([r["model"], str(len(r["seeds"])), *main, *rest, _fmt(r["epochs"], 1),
                                        _fmt(r["train_wall_s"], 0), str(r["trials"]), _fmt(r["params"])]) + " |")
    for p in paper:
        if p["protocol"] != protocol:
            continue
        m = p["metrics"]
        cells = [f"{p['model']}: {p['source']}", "", _fmt(m.get("recall@10")), _fmt(m.get("ndcg@10")),
                 *(_fmt(m.get(c)) for c in ("recall@5", "ndcg@5", "recall@20", "ndcg@20", "mrr", "coverage@10")),
                 "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cold_markdown(rows: list[dict[str, Any]]) -> str:
    """Recall@10 and NDCG@10 of each row on the users whose target is unseen in training."""
    lines = ["| model | seeds | users | Recall@10 (mean ± std [95% CI]) | NDCG@10 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        c = r.get(COLD)
        if c:
            lines.append(f"| {r['model']} | {len(r['seeds'])} | {c['users']:,} | "
                         + " | ".join(mean_std_ci(c, m) for m in TESTED) + " |")
    return "\n".join(lines)


def tests_markdown(tests: list[dict[str, Any]]) -> str:
    """The tests as a table; records from before the seed-aware p (no ``p_seeds``) keep their columns. A test's
    ``label`` and ``baseline_label`` (a lever recipe's "tiger: d_model=128") name its rows where given."""
    seeds = any("p_seeds" in t for t in tests)
    lines = ["| protocol | model | vs | metric | Δ [95% CI] | p (permutation) |" + (" p (seeds) |" if seeds else "")
             + " p (Holm) | verdict |", "|---|---|---|---|---:|---:|" + ("---:|" if seeds else "") + "---:|---|"]
    for t in tests:
        p_seeds = f" {_p(t.get('p_seeds'))}{' (paired)' if t.get('seeds_paired') else ''} |" if seeds else ""
        rows = f"{t.get('label', t['model'])} | {t.get('baseline_label', t['baseline'])}"
        lines.append(f"| {t['protocol']} | {rows} | {t['metric']} | {t['delta']:+.4f}{_ci(t['ci95'])} | "
                     f"{t['p_permutation']:.4g} |{p_seeds} {t['p_holm']:.4g} | {t['verdict']} |")
    return "\n".join(lines)


def _p(p: float | None) -> str:
    return stats.format_p(p)


def rule(tests: list[dict[str, Any]], flips: int) -> str:
    """How the tests were made and corrected, as the tests themselves were recorded."""
    if any("p_seeds" in t for t in tests):
        return ("Δ with its 95% CI from a paired bootstrap over users and seeds (seeds paired where both rows scored the "
                "same networks); each test's p is the larger of the two-sided sign-flip permutation test on per-user "
                f"differences of seed means ({flips:,} flips) and the bootstrap's normal p, which also counts the spread "
                f"between training seeds; Holm-corrected over all {len(tests)} tests; \"better\"/\"worse\" only where the "
                "corrected p < 0.05 and the CI excludes 0")
    return ("Δ with its 95% CI from a paired bootstrap over users and seeds; the two-sided sign-flip permutation test on "
            f"per-user differences of seed means ({flips:,} flips), Holm-corrected over all {len(tests)} tests; "
            "\"better\"/\"worse\" only where the corrected p < 0.05 and the CI excludes 0")


def write(out: Path, rows: list[dict[str, Any]], tests: list[dict[str, Any]], paper: list[dict[str, Any]],
          cfg: CompareConfig, wall_s: float, compute_s: float | None = None) -> None:
    prov = artifacts.provenance(cfg.model_dump(mode="json"))
    hw = rows[0]["hardware"] if rows else prov["hardware"]
    commits = sorted({c for r in rows for c in r["git"]})
    tuned = (f"one grid on validation for every trained row, {' × '.join(f'{k} ∈ {v}' for k, v in cfg.tune.items())} "
             f"(chosen by validation {cfg.select} at seed {cfg.seeds[0]})" if cfg.tune else "no tuning grid (each row's recipe as configured)")
    md = ["# Model comparison", "",
          f"Dataset {rows[0]['dataset'] if rows else '?'}, {rows[0]['users'] if rows else 0:,} {cfg.split} users, "
          "full-catalogue ranking, one target per user. Each trained row: " + tuned + f"; then seeds {cfg.seeds} "
          "(model init and data order; the Semantic IDs are one fit shared by every model and seed); pop and knn are "
          "deterministic and run once. Mean ± std over seeds; the 95% CI resamples users and seeds "
          f"({cfg.bootstrap} resamples). Budget: {cfg.budget or 'each model’s own epochs'}, early stopping on one fixed "
          "sample of validation users, the same for every model; never a wall-clock cap. Rows marked (paper) are the papers' "
          "own numbers, listed under the protocol their evaluation used.", ""]
    for protocol in PROTOCOLS:
        md += [f"## {protocol.capitalize()} ({PROTOCOL_NOTE[protocol]})", "", markdown(rows, paper, protocol), ""]
    if any(r.get(COLD) for r in rows):
        md += ["## Cold targets (users whose target no training row holds; history kept)", "", cold_markdown(rows), ""]
    if tests:
        md += ["## Paired tests", "",
               f"Each row against {', '.join(cfg.baselines)} on the same users, Δ = row − baseline: "
               + rule(tests, tests[0].get("flips", cfg.permutations)) + ".", "", tests_markdown(tests), ""]
    md += [f"Hardware (detected): {artifacts.describe_hardware(hw)}; threads per cell: {cfg.threads or 'model default'}, "
           f"{cfg.jobs} cell(s) side by side. Code: git {', '.join(c[:10] for c in commits)}"
           f"{' (uncommitted changes)' if any(r['dirty'] for r in rows) else ''}. Wall time of this command {wall_s:.0f} s "
           "(finished cells are reused, not retrained; `train s` is the mean training time per seed, every process of a "
           "resumed run included)" + (f"; training and evaluation of every cell, the tuning grid included, as measured when "
                                      f"they ran: {compute_s:.0f} s ({compute_s / 3600:.1f} h)." if compute_s else ".")]
    artifacts.write_text(out / "comparison.md", "\n".join(md) + "\n")
    flat = [{"model": r["model"], "seeds": len(r["seeds"]), "trials": r["trials"],
             **{f"{c}{'' if p == 'history kept' else ' (history removed)'}": r[p]["mean"][c] for p in PROTOCOLS for c in COLUMNS},
             **{f"{c} std": r["history kept"]["std"][c] for c in TESTED},
             "epochs": r["epochs"], "train_wall_s": r["train_wall_s"], "params": r["params"]} for r in rows]
    with artifacts.atomic_path(out / "comparison.csv") as tmp:
        pl.DataFrame(flat, infer_schema_length=None).write_csv(tmp)
    artifacts.write_json(out / "comparison.json", {"rows": rows, "tests": tests, "paper": paper,
                                                   "config": cfg.model_dump(mode="json"), "wall_time_s": round(wall_s, 1),
                                                   "cells_compute_s": compute_s, **prov})
    if rows:
        plot(out / "recall10.png", rows, paper)
    log.info("compare: %d models, %d paired tests → %s", len(rows), len(tests), out / "comparison.md")


def plot(path: Path, rows: list[dict[str, Any]], paper: list[dict[str, Any]]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(rows) + 2), 3.8))
    x = np.arange(len(rows))
    for i, (protocol, color) in enumerate(zip(PROTOCOLS, ("tab:blue", "tab:orange"))):
        vals = np.array([r[protocol]["mean"]["recall@10"] for r in rows])
        cis = [r[protocol]["ci95"].get("recall@10") or [v, v] for r, v in zip(rows, vals)]
        err = np.array([[v - c[0] for v, c in zip(vals, cis)], [c[1] - v for v, c in zip(vals, cis)]])
        ax.bar(x + (i - 0.5) * 0.4, vals, 0.4, yerr=np.clip(err, 0, None), capsize=2, color=color, label=protocol)
    for p in paper:
        if p["metrics"].get("recall@10") is not None:
            ax.axhline(p["metrics"]["recall@10"], ls="--", lw=0.7, color="gray")
            ax.text(len(rows) - 0.5, p["metrics"]["recall@10"], f"{p['model']} ({p['protocol']})", fontsize=6,
                    va="bottom", ha="right", color="gray")
    ax.set_xticks(x, [r["model"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("Recall@10 (mean over seeds, 95% CI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi=120)


__all__ = ["summarise", "paired_tests", "baseline_pairs", "write", "markdown", "tests_markdown", "paper_rows", "val_score", "per_user"]
