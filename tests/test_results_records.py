"""The committed results/: every record carries its provenance, and the README shows exactly
what `semid results` generates from them now."""

from __future__ import annotations

from pathlib import Path

import pytest

from semid.core import artifacts
from semid.evaluate import results

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted(p for p in (ROOT / "results").glob("*/*.json") if isinstance(artifacts.read_json(p).get("metrics"), dict))


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_record_has_its_provenance(path):
    rec = artifacts.read_json(path)
    missing = [k for k in results.PROVENANCE if rec.get(k) in (None, "", [])]
    assert not missing, f"{path} lacks {missing}: regenerate it with the command in results/README.md"
    assert rec["source"] == "measured"
    assert isinstance(rec["hardware"], dict) and rec["hardware"].get("cpus"), "hardware must be detected, not typed"
    assert rec["git"].get("commit"), "the record must name the commit that produced it"
    assert rec.get("metrics_history_removed"), "every record holds both protocols"
    assert rec["dirty"] is False, f"{path} came from a tree with uncommitted changes"
    assert "stopped_by" not in rec or "max_time_min" not in rec["stopped_by"], "no wall-clock budgets in reported results"


def test_records_and_readme_agree():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(results.START) + len(results.START), readme.index(results.END)
    generated = results.table(results.load_records(ROOT / "results"), results.load_reference(ROOT / "results"))
    assert generated in readme[start:end], "README's results table is stale: run `semid results --update-readme README.md`"
    if results.RANK_START in readme:
        rank = results.ranking_table(ROOT / "results")
        body = readme[readme.index(results.RANK_START):readme.index(results.RANK_END)]
        assert rank in body, "README's ranking table is stale: run `semid results --update-readme README.md`"


def test_every_results_file_is_listed_in_results_readme():
    listing = (ROOT / "results" / "README.md").read_text()
    for path in (ROOT / "results").glob("*/*"):
        if path.parent.name == "archive":
            continue
        stem = path.name if path.parent.name != "beauty" or path.suffix != ".json" else "<model>.json"
        assert stem in listing or path.name in listing or f"{path.parent.name}/" in listing, f"{path} is not in results/README.md"


def test_study_records_have_provenance_and_no_stale_keys():
    studies = sorted((ROOT / "results").glob("*/rank_study.json"))
    assert studies, "the ranking study's records are missing: make rank-study"
    for path in studies:
        doc = artifacts.read_json(path)
        assert "rerank" not in doc, f"{path}: the rerank figures belong in rerank.json"
        assert doc["git"]["commit"] and doc["git"]["dirty"] is False, f"{path}: not from a committed tree"
        assert doc["versions"]["torch"] and doc["hardware"]["cpus"] and doc["date"] and doc["command"]
