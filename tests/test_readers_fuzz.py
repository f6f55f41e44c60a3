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


@pytest.mark.parametrize("fmt", ["amazon2014", "amazon2018"])
def test_lone_surrogate_escapes_are_counted_or_replaced(fmt):
    """Found by the fuzzer at 10,000 cases: a JSON escape like \\ud8bf (half a surrogate pair) once
    crashed the lenient line-by-line path with a UnicodeEncodeError."""
    review = '{"reviewerID": "%s", "asin": "I1", "overall": 5.0, "unixReviewTime": 1400000000}'
    meta = '{"asin": "I1", "title": "caf\\udcc3 cream"}' if fmt == "amazon2018" else "{'asin': 'I1', 'title': 'cream'}"
    lines = [review % "U1", review % "\\ud8bf", "x" * 300, "not json"]
    names = list(fuzz_readers.LAYOUTS[fmt])
    tally, bad = fuzz_readers.Counter(), []
    fuzz_readers.run_case(fmt, {names[0]: (lines, "plain"), names[1]: ([meta], "plain")}, False, tally, bad)
    assert not bad and tally["read, lines skipped and counted"] == 1


@pytest.mark.parametrize("fmt", ["unisrec", "csv"])
@pytest.mark.parametrize("stamp", ["inf", "nan", "1e400", "9" * 25])
def test_timestamps_past_int64_or_not_finite_are_bad_lines(fmt, stamp):
    """Found by the fuzzer: such a timestamp once escaped as an OverflowError or a polars cast error."""
    line = f"U1\tI2\t{stamp}" if fmt == "unisrec" else f"U1,I2,{stamp}"
    good = "U1\tI1\t1400000000" if fmt == "unisrec" else "U1,I1,1400000000"
    for strict in (True, False):
        tally, bad = fuzz_readers.Counter(), []
        fuzz_readers.run_case(fmt, {next(iter(fuzz_readers.LAYOUTS[fmt])): ([good, line], "plain")}, strict, tally, bad)
        assert not bad
        assert tally["clear error (file and line)" if strict else "read, lines skipped and counted"] == 1
