"""Behaviour kept through refactorings: the toy golden record (benchmarks/golden.py).

The whole toy pipeline and every comparison model, with fixed seeds on one thread, must give the
Semantic IDs and test metrics recorded in ``benchmarks/results/golden_toy.json`` (recorded by the
code before the package was reshaped). A change that moves these numbers on purpose re-records
the file with the command in its ``command`` field and says why in its commit.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_toy_pipeline_matches_the_golden_record(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "golden.py"), "toy", "--out", str(tmp_path / "toy"),
                          "--check", str(ROOT / "benchmarks" / "results" / "golden_toy.json")],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    if "not comparable:" in res.stdout:  # a CPU whose float path has no record: the rest was checked
        pytest.skip(res.stdout[res.stdout.index("not comparable:"):].strip())
    assert "identical to" in res.stdout


def _golden():
    spec = importlib.util.spec_from_file_location("golden", ROOT / "benchmarks" / "golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_check_uses_the_record_of_the_same_embeddings():
    g = _golden()
    ids, free, sid = {"rqvae-3x256": "a"}, {"recall@10": 0.1}, {"recall@10": 0.2}
    here = {"embeddings": "e1", "semantic_ids": ids, "metrics": {"pop": free, "tiger": sid}}
    other = {"embeddings": "e2", "semantic_ids": {"rqvae-3x256": "b"}, "metrics": {"pop": free, "tiger": {"recall@10": 0.3}}}
    assert g.check(here, [other, here]) == ([], "identical")
    moved = here | {"metrics": {"pop": free, "tiger": {"recall@10": 0.25}}}
    assert g.check(moved, [other, here])[0] == ["metrics/tiger: got {'recall@10': 0.25}, recorded {'recall@10': 0.2}"]
    # no record from these embeddings: only the rows that never read them are compared
    assert g.check(here, [other]) == ([], "not comparable")
    broken = here | {"metrics": {"pop": {"recall@10": 0.0}, "tiger": sid}}
    assert g.check(broken, [other])[0] == ["metrics/pop: got {'recall@10': 0.0}, recorded {'recall@10': 0.1}"]
    # a record of the first layout (no embeddings digest) is matched in full or not at all
    legacy = g.records({"semantic_ids": ids, "metrics": {"pop": free, "tiger": sid}})
    assert g.check(here, legacy) == ([], "identical")
    assert g.check(moved, legacy) == ([], "not comparable")
