"""Which recorded verdicts survive a test that also counts the spread between training seeds.

    python benchmarks/audit_seed_spread.py [--results results] [--out benchmarks/results/seed_spread_audit.md]

Every "better"/"worse" in ``results/`` needs a Holm-corrected sign-flip permutation p < 0.05, which
flips each user's difference of the two rows' seed means: it treats the trained networks as given.
The seed spread enters only the bootstrap CI (users and seeds resampled), which is not corrected.
This audit reads every recorded table and, for each test, takes a normal p-value from that
bootstrap: ``z = delta / se`` with ``se`` the CI's width over 2 × 1.96 (an approximation: the CI
is a percentile interval), Holm-corrects those over the table's tests, and counts the verdicts
whose corrected p is not below 0.05. Pairs of rows that scored the very same model folders (an
evaluation setting against another: cold-start caps, beams) are counted apart: there the
networks are identical, the permutation test is the right one, and the unpaired seed bootstrap
overstates the spread. Tables recorded under the seed-aware rule (their tests carry ``p_seeds``)
already correct that p and are listed, not audited. It reads records only; nothing is trained or
scored.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist

from semid.evaluate import stats

Z95 = NormalDist().inv_cdf(0.975)


def seed_aware_p(test: dict) -> float | None:
    """Two-sided normal p of the test's delta from its bootstrap CI (None without a CI)."""
    ci = test.get("ci95")
    if not ci:
        return None
    return stats.normal_p(test["delta"], (ci[1] - ci[0]) / (2 * Z95))


def audit(record: Path) -> dict:
    """One table's counts: tests, verdicts, verdicts lost (different networks), same-network verdicts."""
    data = json.loads(record.read_text())
    tests = data.get("tests") or []
    folders = {r.get("row") or r["model"]: frozenset(s.get("folder") for s in r.get("per_seed", [])) for r in data["rows"]}
    holm = stats.holm([seed_aware_p(t) for t in tests])
    out = {"table": record.parent.name if record.name == "experiment.json" else f"{record.parent.name} comparison",
           "tests": len(tests), "verdicts": 0, "lost": 0, "same_networks": 0, "lost_examples": [],
           "seed_aware": any("p_seeds" in t for t in tests)}
    for t, p in zip(tests, holm):
        if out["seed_aware"]:
            out["verdicts"] += t.get("verdict") in ("better", "worse")
            continue
        if t.get("verdict") not in ("better", "worse"):
            continue
        out["verdicts"] += 1
        same = folders.get(t["model"]) is not None and folders.get(t["model"]) == folders.get(t["baseline"])
        if same:
            out["same_networks"] += 1
        elif p is None or p >= 0.05:
            out["lost"] += 1
            out["lost_examples"].append(f"{t['model']} vs {t['baseline']}, {t['protocol']}, {t['metric']}: "
                                        f"Δ {t['delta']:+.4f}, Holm p {t['p_holm']:.3g} → {p:.3g}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/seed_spread_audit.md"))
    args = ap.parse_args()
    records = sorted(args.results.glob("experiments/*/experiment.json")) + sorted(args.results.glob("*/comparison.json"))
    rows = [a for a in map(audit, records) if a["tests"]]
    lines = [f"# Recorded verdicts under a test that counts the seed spread ({datetime.now(UTC):%Y-%m-%d})", "",
             f"`python benchmarks/audit_seed_spread.py` over {len(rows)} tables of `{args.results}/`; method in the "
             "script's docstring. \"lost\": a verdict between different trained networks whose seed-aware Holm p is not "
             "below 0.05; \"same networks\": verdicts between two evaluation settings of the same model folders (not audited).",
             "", "| table | tests | verdicts | lost | same networks |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {a['table']} | {a['tests']} | {a['verdicts']} | " + ("recorded seed-aware | – |" if a["seed_aware"] else
              f"{a['lost']} | {a['same_networks']} |") for a in rows]
    old = [a for a in rows if not a["seed_aware"]]
    tot = {k: sum(a[k] for a in old) for k in ("tests", "verdicts", "lost", "same_networks")}
    lines += [f"| all recorded before the seed-aware rule ({len(old)} tables) | {tot['tests']} | {tot['verdicts']} | "
              f"{tot['lost']} | {tot['same_networks']} |", "", "## Lost verdicts", ""]
    lines += [f"- `{a['table']}`: {x}" for a in rows for x in a["lost_examples"]]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(rows) + 8]))


if __name__ == "__main__":
    main()
