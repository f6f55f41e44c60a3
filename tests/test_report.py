"""``semid report``: a toy experiment and its run folder rendered as Markdown and as one HTML page,
the page opened in a real headless Chromium (Debian's chromium, driven by Playwright).

The screenshot in docs/img/results/report.png is made with

    SEMID_SCREENSHOT=docs/img/results/report.png .venv/bin/python -m pytest tests/test_report.py
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from semid.cli import app
from semid.core.figures import pyplot, save
from semid.core.run import RunFolder
from semid.experiments import experiment_table
from semid.experiments import table as comparison_table
from semid.report import collect

CHROMIUM = Path("/usr/bin/chromium")
TITLE = "Toy report: <codebook> sizes & models"  # text, not tags
RECIPE = {
    "prepare": {"dataset": "toy"},
    "ids": {"method": "rqkmeans", "tsne_sample": 0},
    "compare": {"models": ["pop", "sasrec-ce"], "budget": {"max_epochs": 1, "val_users": 50}, "seeds": [0], "threads": 1,
                "bootstrap": 50, "permutations": 200, "settings": {"sasrec-ce": {"d_model": 16}}},
    "experiment": {"description": "Toy: does the <b>codebook size</b> matter? <script>alert(1)</script>", "grid": {"ids.codebook_size": [8, 16]},
                   "baseline": {"ids.codebook_size": 16}, "baseline_model": "pop"},
}
CASES = "# Case studies\n\nFive sampled users.\n" + "".join(f"\n## User {u}\n\n| rank | knn |\n|---:|---|\n| 1 | item {u} |\n" for u in range(5))
FAILURES = ("# Failure analysis\n\nAll users of the split.\n\n## Recall@10 by cold / warm target\n\n| bucket | users | R@10 knn |\n"
            "|---|---:|---:|\n| cold | 3 | 0.0000 |\n\n![failures](failures.png)\n")
CODES = "# What the codes mean\n\n## Map\n\n![map](code_map.png)\n"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def fake_analysis(run: Path) -> None:
    """What ``semid analyze`` writes, in small (it needs one Semantic-ID folder; this run has two):
    its Markdown files and one figure; code_map.png and the manifest are left out on purpose."""
    folder = run / collect.ANALYSIS
    folder.mkdir()
    for name, text in (("cases.md", CASES), ("failures.md", FAILURES), ("codes.md", CODES)):
        (folder / name).write_text(text)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar([0, 1], [0.2, 0.4])
    save(fig, folder / "failures.png")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    """A toy experiment (2 codebook sizes × pop, SASRec) in run folder runs/toy, plus a comparison of
    pop and kNN on the same folder and a small analysis folder."""
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "toy-grid.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    res = invoke("experiment", str(tmp / "toy-grid.yaml"), "--out", str(tmp / "exp"), "--runs", str(tmp / "runs"))
    assert res.exit_code == 0, res.output + repr(res.exception)
    run = tmp / "runs" / "toy"
    res = invoke("compare", "--out", str(run), "--dataset", "toy", "compare.models=[pop,knn]", "compare.baselines=[pop]",
                 "compare.bootstrap=50", "compare.permutations=200", "ids.method=rqkmeans", "ids.codebook_size=16")
    assert res.exit_code == 0, res.output + repr(res.exception)
    fake_analysis(run)
    return {"tmp": tmp, "run": run, "exp": tmp / "exp"}


@pytest.fixture(scope="module")
def rendered(toy) -> Path:
    out = toy["tmp"] / "out"
    res = invoke("report", str(toy["run"]), str(toy["exp"]), "--out", str(out), "--title", TITLE, "--cases", "2")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert sorted(p.name for p in out.iterdir()) == ["img", "report.html", "report.md"]
    return out


def links(md: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())


def test_markdown_holds_the_sections_and_links_only_pngs_that_exist(toy, rendered):
    md = rendered / "report.md"
    text = md.read_text()
    found = links(md)
    assert found and all((rendered / f).is_file() and f.startswith("img/report/") and f.endswith(".png") for f in found)
    assert {p.name for p in (rendered / "img" / "report").iterdir()} == {Path(f).name for f in found}  # nothing unlinked
    for head in ("### Data", "### Semantic IDs", "### Comparison", "### Evaluated models", "### Qualitative analysis",
                 "## Experiment `toy-grid`", "## Provenance"):
        assert f"\n{head}" in text, head
    # the tables are those the commands' own functions make from their JSON (no number re-typed)
    exp = json.loads((toy["exp"] / "experiment.json").read_text())
    assert experiment_table.markdown(exp["rows"], ["ids.codebook_size"]) in text
    assert comparison_table.tests_markdown(exp["tests"]) in text
    comp = json.loads((toy["run"] / "compare" / "comparison.json").read_text())
    assert comparison_table.markdown(comp["rows"], comp["paper"], "history kept") in text
    # what is absent is said: no ranking study, no training curves; the analysis without its manifest and map
    assert re.search(r"`[^`]*runs/toy`: time to quality; ranking study\.", text)
    assert "manifest.json` is missing" in text and "is not in" in text
    assert "Case studies (2 of 5 sampled users" in text and "User 1" in text and "User 2" not in text
    again = shlex.join(["semid", "report", str(toy["run"]), str(toy["exp"]), "--out", str(rendered), "--name", "report",
                        "--title", TITLE, "--cases", "2"])
    assert text.startswith(f"# {TITLE}\n\nRegenerate with:\n\n```bash\n{again}\n```\n")
    assert text.count("| ids/rqkmeans-3x16/manifest.json |") == 1  # provenance: each file read, once


def test_html_page_in_a_real_browser(toy, rendered, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed (pip install -e '.[test]')")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    page_file = rendered / "report.html"
    requests, errors = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        assert page.title() == TITLE and page.locator("h1").inner_text() == TITLE  # escaped
        assert page.evaluate("document.scripts.length") == 0  # the description's script is text, not run
        widths = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])")
        assert len(widths) == len(links(rendered / "report.md"))
        assert all(ok and w > 0 and src == "data:image/png;base64," for ok, w, src in widths), widths

        exp = json.loads((toy["exp"] / "experiment.json").read_text())
        rows = page.locator("section:has(h2:has-text('Experiment')) table").first.locator("tbody tr")
        got = [(rows.nth(i).locator("td").nth(0).inner_text(), rows.nth(i).locator("td").nth(1).inner_text()) for i in range(rows.count())]
        assert got == [(str(r["point"]["ids.codebook_size"]), r["model"]) for r in exp["rows"]] and len(got) == 4
        assert page.locator("section:has(h2:has-text('Experiment')) b").count() == 0  # the description's tags are text
        comparison = page.locator("section:has(h3:text-is('Comparison')) table").first.locator("tbody tr td:first-child")
        assert comparison.all_inner_texts() == ["pop", "knn"]
        shot = tmp_path / "report.png"
        page.locator("section:has(h2:has-text('Experiment'))").evaluate("e => e.scrollIntoView()")  # a table and its plot
        page.screenshot(path=str(shot))
        page.locator("nav a", has_text="Provenance").click()
        assert page.evaluate("location.hash") == "#provenance"
        browser.close()
    assert shot.stat().st_size > 20_000
    if os.environ.get("SEMID_SCREENSHOT"):
        dest = Path(os.environ["SEMID_SCREENSHOT"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)
    assert requests == [page_file.as_uri()], requests  # the file itself and nothing else
    assert not errors, errors


def test_rerun_removes_the_pngs_it_no_longer_links(toy, tmp_path):
    out = tmp_path / "docs"
    assert invoke("report", str(toy["run"]), str(toy["exp"]), "--out", str(out), "--name", "results", "--format", "md").exit_code == 0
    assert not (out / "results.html").exists()
    images = out / "img" / "results"
    (images / "report.png").write_bytes(b"a screenshot, not the report's")
    before = {p.name for p in images.iterdir()}
    assert invoke("report", str(toy["exp"]), "--out", str(out), "--name", "results", "--format", "md").exit_code == 0
    after = {p.name for p in images.iterdir()}
    assert after < before and "report.png" in after and {Path(f).name for f in links(out / "results.md")} == after - {"report.png"}


def test_figures_are_small_256_colour_copies_of_their_sources(toy, rendered):
    from PIL import Image

    from semid.report import render

    source = next(toy["run"].glob("ids/*/code_usage.png"))
    small = render.png(source)
    assert len(small) < source.stat().st_size and render.png(source) == small  # smaller, and the same every time
    with Image.open(source) as a, Image.open(io.BytesIO(small)) as b:
        assert b.mode == "P" and a.size == b.size
        diff = np.abs(np.asarray(a.convert("RGBA"), dtype=int) - np.asarray(b.convert("RGBA"), dtype=int))
        assert diff.mean() < 2  # the same picture
    copies = [p.read_bytes() for p in (rendered / "img" / "report").glob("*.png")]
    assert small in copies  # what the Markdown links
    broken = toy["tmp"] / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert render.png(broken) == b"\x89PNG not really"  # copied as it is, not a crash


def test_a_recorded_time_to_quality_curve_is_reported_from_results_alone(toy, tmp_path):
    from semid.evaluate import results as records

    run = tmp_path / "run"
    shutil.copytree(toy["run"], run)
    trained = next(p.name for p in (run / "models").iterdir() if p.name.startswith("sasrec-ce"))
    assert invoke("curves", "--out", str(run), trained).exit_code == 0
    written = records.record_comparison(run / "compare", root=tmp_path / "results", allow_dirty=True)
    assert {p.name for p in written} >= {"time_to_quality.png", "time_to_quality.json"}
    shutil.rmtree(run)  # the report needs the record only, not the run's training logs
    out = tmp_path / "out"
    res = invoke("report", str(tmp_path / "results"), "--out", str(out), "--format", "md")
    assert res.exit_code == 0, res.output + repr(res.exception)
    text = (out / "report.md").read_text()
    assert "### toy: time to quality" in text and "time_to_quality.png)" in text
    assert f"{trained}: `{run / 'models' / trained}`, 1 thread(s)" in text  # which model folder each line is


def test_the_records_cost_is_one_row_each_with_their_sum(toy, tmp_path):
    from semid.evaluate import results as records

    results = tmp_path / "results"
    records.record_comparison(toy["run"] / "compare", root=results, allow_dirty=True)
    shutil.copytree(toy["exp"], results / "experiments" / "toy-grid")
    # the toy's cells take under a second: costs of a real size, as their records would state them
    for path, change in ((results / "toy" / "comparison.json", {"cells_compute_s": 80468.4}),
                         (results / "experiments" / "toy-grid" / "experiment.json",
                          {"cost": {"cells_s": 1234.6, "shared_stages_s": 56.2, "total_s": 1290.8}})):
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    out = tmp_path / "out"
    res = invoke("report", str(results), "--out", str(out), "--format", "md")
    assert res.exit_code == 0, res.output + repr(res.exception)
    section = (out / "report.md").read_text().split("### What the records cost")[1].split("\n## ")[0]
    assert "| toy comparison | 80,468 | – | 22.35 |" in section
    assert "| experiment toy-grid | 1,235 | 56 | 0.36 |" in section
    assert "| sum | 81,703 | 56 | 22.71 |" in section
    assert "counts in each of them" in section  # shared cells: the sum is an upper bound, and says so
    assert "|---|---:|---:|---:|---:|---|---|" in section  # the comparison's missing shared stages leave the column numeric


def test_id_figures_only_for_the_folders_asked_for(toy, tmp_path):
    out = tmp_path / "few"
    res = invoke("report", str(toy["run"]), "--out", str(out), "--format", "md", "--id-figures", "*-3x16")
    assert res.exit_code == 0, res.output + repr(res.exception)
    text = (out / "report.md").read_text()
    shown = {Path(f).name for f in links(out / "report.md")}
    assert any("rqkmeans-3x16-code_usage" in f for f in shown) and not any("3x8" in f for f in shown)
    assert "| rqkmeans-3x8 |" in text and "| rqkmeans-3x16 |" in text  # both stay in the table
    assert "Figures not shown (`--id-figures *-3x16`) for `rqkmeans-3x8`" in text
    assert "--id-figures '*-3x16'" in text.split("```")[1]  # the command that makes it again


def test_a_recorded_study_is_drawn_from_its_summary(tmp_path):
    study = Path(__file__).resolve().parents[1] / "results" / "office" / "rank_study.json"
    if not study.is_file():
        pytest.skip(f"{study} is not in this checkout")
    doc = json.loads(study.read_text())
    (tmp_path / "results" / "office").mkdir(parents=True)
    (tmp_path / "results" / "office" / "rank_study.json").write_text(json.dumps({**doc, "run_dir": str(tmp_path / "gone")}))
    out = tmp_path / "out"
    res = invoke("report", str(tmp_path / "results"), "--out", str(out), "--format", "md")
    assert res.exit_code == 0, res.output + repr(res.exception)
    text = (out / "report.md").read_text()
    assert "### office: ranking study" in text and doc["claims"][0]["claim"] in text
    assert len(links(out / "report.md")) == 2 and "office: model records; office: comparison" in text


def test_a_run_still_being_written_is_named(tmp_path):
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "semid"])
    try:
        (run / ".semid.lock").write_text(f"pid {child.pid} (`semid compare --out {run}`, since 2026-01-01 00:00:00)")
        res = invoke("report", str(run), "--out", str(tmp_path / "out"), "--format", "md")
    finally:
        child.kill()
        child.wait()
    assert res.exit_code == 0, res.output
    text = (tmp_path / "out" / "report.md").read_text()
    assert f"`semid compare --out {run}` is still running (pid {child.pid}" in text
    assert collect.writer(run) is None  # its holder has exited


@pytest.mark.parametrize("make, args, message", [
    (lambda t: None, [], "does not exist"),
    (lambda t: t.mkdir(), [], "neither a run folder"),
    (lambda t: t.write_text("x"), [], "is a file"),
    (lambda t: (t / "data").mkdir(parents=True), ["--format", "pdf"], "choose from html, md"),
    (lambda t: (t / "data").mkdir(parents=True), ["--name", "a/b"], "a plain file name"),
])
def test_bad_input_is_one_clear_line(tmp_path, make, args, message):
    target = tmp_path / "what"
    make(target)
    res = invoke("report", str(target), "--out", str(tmp_path / "out"), *args)
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") <= 3, res.output
    if message in ("does not exist", "neither a run folder", "is a file"):
        assert str(target) in res.output
    assert not (tmp_path / "out").exists()


def test_the_analysis_folder_is_where_semid_analyze_writes(tmp_path):
    stage = pytest.importorskip("semid.analysis.stage")
    assert not hasattr(stage, "ANALYSIS")  # one owner of the path: semid analyze writes to RunFolder.analysis
    assert RunFolder(tmp_path).analysis == tmp_path / collect.ANALYSIS
