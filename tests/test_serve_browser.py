"""The page of ``semid serve`` in a real browser: Debian's chromium, headless, driven by Playwright.

A server is started on 127.0.0.1 over the toy run (or ``SEMID_SERVE_RUN``); the test builds a
history by clicking search results, checks both models' lists against the API, opens the code
tree, assigns a cold-start ID and saves a screenshot. The README's picture is made with

    SEMID_SERVE_RUN=runs/beauty-serve SEMID_SCREENSHOT=docs/img/serve.png .venv/bin/python -m pytest tests/test_serve_browser.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from semid.serve.process import child_server
from test_serve_api import build_toy_run

CHROMIUM = Path("/usr/bin/chromium")
COLD_TEXT = "Rose hand cream with shea butter and vitamin E for dry skin, 50 ml tube"
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is absent (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = os.environ.get("SEMID_SERVE_RUN")
    run = Path(env) if env else build_toy_run(tmp_path_factory.mktemp("browser") / "toy")
    with child_server(run, tmp_path_factory.mktemp("browser-log") / "server.log") as child:
        yield child.base


def shared(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_history_by_clicking_two_models_tree_and_cold_start(server, tmp_path):
    expect = sync_api.expect
    info = httpx.get(f"{server}/models").json()
    top = httpx.get(f"{server}/items-under", params={"prefix": "", "limit": 1}).json()["items"][0]
    word = next(w for w in re.findall(r"[A-Za-z]{3,}", top["title"]))
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert page.input_value("[data-testid=model-0]") == info["pair"][0]
        assert page.input_value("[data-testid=model-1]") == info["pair"][1]

        # a history of two items, built by clicking search results
        page.fill("[data-testid=search]", word)
        hits = page.locator("[data-testid=search-results] li")
        expect(hits.first).to_be_visible()
        picked = [int(hits.nth(i).get_attribute("data-item")) for i in (0, 1)]
        hits.nth(0).click()
        hits.nth(1).click()
        expect(page.locator("[data-testid=history] li")).to_have_count(2)
        for c, model in enumerate(info["pair"]):
            want = httpx.post(f"{server}/recommend", json={"history": picked, "k": 10, "model": model}).json()
            rows = page.locator(f"[data-testid=recs-{c}] li")
            expect(rows).to_have_count(len(want["items"]))
            expect(rows.first).to_have_attribute("data-item", str(want["items"][0]["item_id"]))
            assert [int(rows.nth(i).get_attribute("data-item")) for i in range(rows.count())] == [it["item_id"] for it in want["items"]]
            highlighted = sum(max(shared(h["sid"], it["sid"]) for h in want["history"]) for it in want["items"])
            assert page.locator(f"[data-testid=recs-{c}] .code.shared").count() == highlighted

        # the code tree: a first-level branch opens onto its next codes
        first = page.locator("#tree > .children > [data-testid=tree-node]").first
        path = first.get_attribute("data-path")
        first.locator("button").first.click()
        expect(first.locator("[data-testid=tree-node]").first).to_have_attribute("data-path", re.compile(rf"^{path},\d+$"))

        # cold start: a new product's text → its Semantic ID, nearest items and tree neighbours
        page.fill("[data-testid=cold-text]", COLD_TEXT)
        page.click("[data-testid=cold-assign]")
        sid = page.locator("[data-testid=cold-sid] .code")
        expect(sid.first).to_be_visible(timeout=120_000)
        want = httpx.post(f"{server}/assign", json={"items": [COLD_TEXT]}, timeout=120).json()[0]
        assert [int(t) for t in sid.all_inner_texts()] == want["sid"]
        expect(page.locator("[data-testid=cold-nearest] li")).to_have_count(5)
        expect(page.locator("[data-testid=cold-neighbours] li")).to_have_count(len(want["neighbours"]))

        shot = Path(os.environ.get("SEMID_SCREENSHOT") or tmp_path / "serve.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
    assert not errors, errors
