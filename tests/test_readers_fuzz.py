"""Every reader under generated broken input (the harness of benchmarks/fuzz_readers.py, with fewer
examples than its recorded 10,000 per format): clear errors naming file (and line) or counted skips."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("fuzz_readers", Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_readers.py")
fuzz_readers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz_readers)


@pytest.mark.parametrize("fmt", list(fuzz_readers.LAYOUTS))
def test_reader_survives_generated_broken_input(fmt):
    tally, bad = fuzz_readers.fuzz(fmt, examples=120)
    assert not bad, bad[:3]
    assert sum(tally.values()) == 120
    assert tally["clear error (file and line)"] > 0 and tally["read, lines skipped and counted"] > 0  # both paths ran


def test_the_harness_reports_an_unclear_error():
    tally, bad = fuzz_readers.Counter(), []
    fuzz_readers.run_case("csv", {"train.csv": (["U1,I1,1400000000"], "gzip-cut")}, True, tally, bad)
    assert not bad and tally["clear error (file)"] == 1  # the cut-short gzip CSV once raised a bare OSError
