"""Behaviour kept through refactorings: the toy golden record (benchmarks/golden.py).

The whole toy pipeline and every comparison model, with fixed seeds on one thread, must give the
Semantic IDs and test metrics recorded in ``benchmarks/results/golden_toy.json`` (recorded by the
code before the package was reshaped). A change that moves these numbers on purpose re-records
the file with the command in its ``command`` field and says why in its commit.
"""

from __future__ import annotations

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
    assert "identical to" in res.stdout
