"""Using a finished run: ``semid.load`` (the Python API), ``semid recommend``, and ``semid serve``'s
JSON API through FastAPI's test client, every bad input included, plus the real server process
(loopback, micro-batching, SIGTERM). The toy run is built once for the module (about a minute)."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import semid
from semid.cli import app as cli
from semid.core.run import RunFolder
from semid.ids.table import load_semantic_ids
from semid.models.common import RankOptions
from semid.models.stage import trained_folder
from semid.serve.api import MAX_HISTORY, LoadedRun
from semid.serve.app import MAX_BODY, STATIC, create_app
from semid.serve.batcher import MicroBatcher
from semid.serve.catalogue import NotFound
from semid.serve.process import child_server

TOY_STEPS = (["prepare", "--dataset", "toy"], ["embed"], ["ids", "train", "method=rqkmeans", "codebook_size=16", "tsne_sample=0"],
             ["train", "tiger", "preset=tiny", "max_epochs=1", "val_users=50", "threads=1"],
             ["train", "sasrec", "d_model=16", "max_epochs=1", "val_users=50", "threads=1"])
NEW_TEXT = "Adjustable dumbbell set with a stand, 20 kg, for a home gym"


def build_toy_run(out: Path) -> Path:
    """A finished toy run: data, embeddings, 3 × 16 RQ-KMeans IDs, a tiny TIGER and a small SASRec-CE."""
    runner = CliRunner()
    for args in TOY_STEPS:
        n = 2 if args[0] in ("ids", "train") else 1  # the (sub)command words come before the options
        res = runner.invoke(cli, [*args[:n], "--out", str(out), *args[n:]])
        assert res.exit_code == 0, res.output + repr(res.exception)
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return build_toy_run(tmp_path_factory.mktemp("serve") / "toy")


@pytest.fixture(scope="module")
def loaded(toy) -> LoadedRun:
    return semid.load(toy)


@pytest.fixture(scope="module")
def client(loaded):
    with TestClient(create_app(lambda: loaded), raise_server_exceptions=False) as c:
        while c.get("/health").json()["status"] != "ready":
            time.sleep(0.01)
        yield c


def test_python_api_recommends_with_titles_and_the_runs_semantic_ids(toy, loaded):
    items = RunFolder(toy).table("items").sort("item_id")
    codes, _, _ = load_semantic_ids(RunFolder(toy).ids_dir("rqkmeans-3x16"))
    assert set(loaded.models) == {"tiger", "sasrec-ce"} and loaded.default_model() == "tiger"
    assert loaded.describe_models()["pair"] == ["tiger", "sasrec-ce"]
    history = [5, 17, 42]
    by_id = loaded.recommend(history, k=7)
    by_asin = loaded.recommend([items["asin"][i] for i in history], k=7)
    assert by_id == by_asin and by_id["model"] == "tiger" and len(by_id["items"]) == 7
    assert [it["rank"] for it in by_id["items"]] == list(range(1, 8))
    for it in by_id["items"]:
        assert it["item_id"] not in history  # the history's own items are left out
        assert it["title"] == items["title"][it["item_id"]] and it["asin"] == items["asin"][it["item_id"]]
        assert it["sid"] == codes[it["item_id"]].tolist()
    assert [h["item_id"] for h in by_id["history"]] == history


@pytest.mark.parametrize("name", ["tiger", "sasrec-ce"])
def test_every_model_serves_its_registry_rankers_list(toy, loaded, name):
    """The service ranks exactly as the model's registry ranker (what `semid evaluate` scores) does."""
    spec, _ = trained_folder(toy, name)
    rank, _ = spec.ranker(RunFolder(toy).model_dir(name), spec.config, RankOptions(top_k=20, beam_size=20))
    hists = [[1, 2, 3], [250], list(range(40, 75))]
    expected, _ = rank([np.array(h) for h in hists], np.zeros(3, dtype=np.int64))
    for h, row in zip(hists, expected):
        got = loaded.recommend(h, k=20, model=name, exclude_history=False)
        assert [it["item_id"] for it in got["items"]] == [int(i) for i in row if i >= 0]


@pytest.mark.parametrize("name, kind", [("tiger", "log-prob"), ("sasrec-ce", "logit")])
def test_recommendations_carry_the_models_own_scores(toy, loaded, name, kind):
    got = loaded.recommend([1, 2, 3], k=10, model=name, exclude_history=False)
    values = [it["score"] for it in got["items"]]
    assert got["score_kind"] == kind and len(values) == 10 and None not in values
    assert values == sorted(values, reverse=True)  # ranked by score
    if kind == "log-prob":  # log-probabilities of distinct whole IDs: each ≤ 0 and together at most 1
        assert max(values) <= 0 and sum(np.exp(values)) <= 1 + 1e-4
    else:  # SASRec's logit of an item: the last position's state dotted with the item's embedding
        from semid.core.run import read_model_folder
        from semid.models.seqrec.data import history_batch
        from semid.models.seqrec.model import model_args
        spec, _ = trained_folder(toy, name)
        meta, weights = read_model_folder(RunFolder(toy).model_dir(name))
        net = spec.config.network(model_args(meta["args"]))
        net.load_state_dict(weights)
        x, last = history_batch([np.array([1, 2, 3])], meta["args"]["max_len"], None)
        with torch.no_grad():
            h = net.eval()(x)[0, last[0]]
        for it in got["items"]:  # row 0 of the embedding table is padding: item i is row i + 1
            assert it["score"] == pytest.approx(float(h @ net.item.weight[it["item_id"] + 1].detach()), abs=1e-3)


def test_item_search_tree_and_items_under(loaded):
    cat = loaded.catalogue
    top = int(np.argmax(cat.popularity))
    assert loaded.item(top) == loaded.item(cat.asins[top]) == loaded.item(str(top))
    word = cat.titles[top].split()[0]
    hits = loaded.search(word.upper(), limit=50)
    assert hits and all(word.lower() in h["title"].lower() for h in hits) and hits[0]["item_id"] == top
    assert loaded.search(cat.asins[7])[0]["item_id"] == 7
    root = loaded.tree()
    assert root["count"] == len(cat) and sum(c["count"] for c in root["children"]) == len(cat)
    branch = root["children"][0]
    assert branch["words"] and all(w in " ".join(cat.titles).lower() for w in branch["words"])
    under = loaded.items_under([branch["code"]], limit=500)
    assert under["count"] == branch["count"] == len(under["items"])
    assert all(it["sid"][0] == branch["code"] for it in under["items"])
    pops = [cat.popularity[it["item_id"]] for it in under["items"]]
    assert pops == sorted(pops, reverse=True)
    leaf = loaded.tree(cat.codes[top][:3].tolist())
    assert top in [c["item"]["item_id"] for c in leaf["children"]]  # the last level lists items


def test_assign_matches_semid_ids_assign_and_stays_unique(toy, loaded, tmp_path):
    texts = [NEW_TEXT, NEW_TEXT, "Waterproof mascara, long-lasting, black"]
    got = loaded.assign(texts)
    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    res = CliRunner().invoke(cli, ["ids", "assign", "--out", str(toy), "--input", str(tmp_path / "new.txt"),
                                   "--to", str(tmp_path / "assigned.parquet")])
    assert res.exit_code == 0, res.output
    ref = pl.read_parquet(tmp_path / "assigned.parquet")
    assert [tuple(g["sid"]) for g in got] == ref.select("code_1", "code_2", "code_3", "dedup").rows()  # the frozen quantiser
    catalogue = {tuple(r) for r in loaded.catalogue.codes.tolist()}
    sids = [tuple(g["sid"]) for g in got]
    assert len(set(sids)) == 3 and not set(sids) & catalogue  # unique against the catalogue and each other
    first = got[0]
    assert len(first["nearest"]) == 5 and first["nearest"][0]["similarity"] >= first["nearest"][-1]["similarity"]
    assert all(n["sid"][:first["shared_levels"]] == first["sid"][:first["shared_levels"]] for n in first["neighbours"])
    assert first["models"]["tiger"]["can_generate"] is True and "sasrec-ce" not in first["models"]
    dedup = loaded.models["tiger"].meta["tokenizer"]["dedup_size"]
    verdict = loaded.can_generate(loaded.models["tiger"], first["sid"][:3] + [dedup])
    assert verdict["can_generate"] is False and "collision code" in verdict["why"]


def test_a_model_folder_that_fails_its_check_is_listed_not_served(toy, tmp_path):
    run = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(toy), str(run)], check=True)
    (RunFolder(run).model_dir("sasrec-ce") / "model.safetensors").write_bytes(b"garbage")
    partial = semid.load(run)
    assert list(partial.models) == ["tiger"] and "changed since training wrote it" in partial.unavailable["sasrec-ce"]
    with pytest.raises(NotFound, match="model 'sasrec-ce' is not served .*changed since"):
        partial.recommend([1], model="sasrec-ce")


def test_recommend_command_prints_a_table_and_json(toy, loaded):
    asins = [loaded.catalogue.asins[i] for i in (5, 17)]
    res = CliRunner().invoke(cli, ["recommend", str(toy), "--history", ",".join(asins), "-k", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == loaded.recommend(asins, k=4)
    res = CliRunner().invoke(cli, ["recommend", str(toy), "--history", f"{asins[0]}, 17", "--model", "sasrec-ce", "-k", "3"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for it in loaded.recommend([asins[0], 17], k=3, model="sasrec-ce")["items"]:
        assert it["asin"] in res.output and "-".join(map(str, it["sid"])) in res.output
    res = CliRunner().invoke(cli, ["recommend", str(toy), "--history", "NOPE1,9999"])
    assert res.exit_code == 2 and "unknown items 'NOPE1', '9999'" in res.output


def test_recommend_endpoint_answers_as_the_python_api(client, loaded):
    r = client.post("/recommend", json={"history": [5, loaded.catalogue.asins[17]], "k": 5, "model": "sasrec-ce"})
    assert r.status_code == 200 and r.json() == loaded.recommend([5, 17], k=5, model="sasrec-ce")
    assert client.get("/models").json()["default"] == "tiger"
    assert client.get("/items/5").json()["item_id"] == 5
    assert client.get("/search", params={"q": loaded.catalogue.titles[5]}).json()[0]["item_id"] == 5
    assert client.get("/tree", params={"prefix": ""}).json()["count"] == len(loaded.catalogue)
    code = int(loaded.catalogue.codes[5][0])
    assert client.get("/items-under", params={"prefix": str(code)}).json() == loaded.items_under([code])
    assert client.post("/assign", json={"items": [NEW_TEXT]}).json() == loaded.assign([NEW_TEXT])
    assert "/recommend" in client.get("/openapi.json").json()["paths"]


BAD = [  # (method, path, body or params, status, words of the message)
    ("post", "/recommend", {"history": [1, 99999, "NOPE"]}, 404, "unknown items 99999, 'NOPE'"),
    ("post", "/recommend", {"history": []}, 422, "history: List should have at least 1 item"),
    ("post", "/recommend", {"history": list(range(MAX_HISTORY + 1))}, 422, f"at most {MAX_HISTORY} items"),
    ("post", "/recommend", {"history": "1,2"}, 422, "history: Input should be a valid list"),
    ("post", "/recommend", {"history": [1.5]}, 422, "history.0"),
    ("post", "/recommend", {"history": [True]}, 422, "history.0"),
    ("post", "/recommend", {"history": [1], "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ("post", "/recommend", {"history": [1], "k": 21}, 422, "k must be an integer from 1 to 20"),
    ("post", "/recommend", {"history": [1], "model": "nosuch"}, 404, "model 'nosuch' is not served; served: tiger, sasrec-ce"),
    ("post", "/recommend", {"history": [1], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ("post", "/recommend", {}, 422, "history: Field required"),
    ("get", "/items/NOPE", None, 404, "unknown item 'NOPE'"),
    ("get", "/items/-1", None, 404, "unknown item '-1'"),
    ("get", "/search", {"q": ""}, 422, "q: String should have at least 1 character"),
    ("get", "/search", {"q": "   "}, 422, "the search text is empty"),
    ("get", "/search", {"q": "x", "limit": 0}, 422, "limit"),
    ("get", "/tree", {"prefix": "1,a"}, 422, "prefix must be codes separated by commas"),
    ("get", "/tree", {"prefix": "1,2,3,4,5"}, 422, "has 4 codes"),
    ("get", "/tree", {"prefix": "99"}, 404, "no item's Semantic ID starts with [99]"),
    ("get", "/tree", {"prefix": "-1"}, 422, "codes are non-negative"),
    ("post", "/assign", {"items": []}, 422, "items: List should have at least 1 item"),
    ("post", "/assign", {"items": ["x"] * 33}, 422, "items: List should have at most 32 items"),
    ("post", "/assign", {"items": [""]}, 422, "items.0: String should have at least 1 character"),
    ("post", "/assign", {"items": ["  "]}, 422, "not texts of 1 to 4000 characters"),
]


@pytest.mark.parametrize(("method", "path", "payload", "status", "words"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_gets_a_4xx_naming_the_problem(client, method, path, payload, status, words):
    kw = {"json": payload} if method == "post" else {"params": payload}
    r = getattr(client, method)(path, **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_bad_json_and_oversized_bodies(client):
    r = client.post("/recommend", content=b'{"history": [1,', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = client.post("/recommend", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400
    big = json.dumps({"history": [1] * (MAX_BODY // 2)}).encode()
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and f"over {MAX_BODY} bytes" in r.json()["detail"]
    r = client.post("/recommend", content=iter([big[:1000], big[1000:]]), headers={"content-type": "application/json"})
    assert r.status_code == 413  # streamed without a content-length
    r = client.post("/recommend", content=b"{}", headers={"content-type": "application/json", "content-length": "x"})
    assert r.status_code in (400, 413)
    assert client.post("/recommend", json={"history": [1], "k": 2}).status_code == 200  # still serving
    assert client.get("/health").json()["status"] == "ready"


def test_api_docs_work_offline(client):
    import re
    page = client.get("/docs")
    assert page.status_code == 200
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/") for s in scripts), scripts  # nothing from another host
    assert all(client.get(s).status_code == 200 for s in scripts)
    assert client.get("/openapi.json").json()["paths"]["/recommend"]


def test_static_files_come_from_the_package_only(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert client.get("/static/app.js").status_code == 200
    for path in ("/static/../api.py", "/static/%2e%2e/api.py", "/static/..%2fapi.py", "/static/%2e%2e%2f%2e%2e%2fcore/run.py",
                 "/static//etc/passwd", "/static/%2fetc%2fpasswd"):
        r = client.get(path)
        assert r.status_code == 404 and "RunFolder" not in r.text and "root:" not in r.text, path
    for f in STATIC.iterdir():  # offline: no file of the page names another host
        assert "http://" not in f.read_text() and "https://" not in f.read_text(), f


def test_503_while_loading_then_ready(loaded):
    go = threading.Event()

    def slow():
        go.wait(30)
        return loaded

    gc.unfreeze()
    with TestClient(create_app(slow)) as c:
        r = c.post("/recommend", json={"history": [1]})
        assert r.status_code == 503 and "still loading" in r.json()["detail"] and r.headers["retry-after"] == "2"
        assert c.get("/health").json()["status"] == "loading" and c.get("/tree").status_code == 503
        assert gc.get_freeze_count() == 0
        go.set()
        for _ in range(500):
            if c.get("/health").json()["status"] == "ready":
                break
            time.sleep(0.01)
        assert c.post("/recommend", json={"history": [1]}).status_code == 200
    # once loaded, the long-lived objects are out of the collector's full passes (a 300 ms stall on Beauty)
    assert gc.get_freeze_count() > 100_000


def test_a_run_that_cannot_load_is_reported(tmp_path):
    with TestClient(create_app(lambda: semid.load(tmp_path / "nothing"))) as c:
        for _ in range(500):
            if c.get("/health").json()["status"] != "loading":
                break
            time.sleep(0.01)
        assert c.get("/health").json()["status"] == "failed"
        r = c.post("/recommend", json={"history": [1]})
        assert r.status_code == 500 and "holds no usable model" in r.json()["detail"]


def test_micro_batcher_groups_concurrent_calls_and_keeps_their_order():
    sizes = []

    def fn(xs):
        sizes.append(len(xs))
        time.sleep(0.02)
        return [ValueError("bad") if x == 13 else x * 10 for x in xs]

    async def main(max_batch):
        b = MicroBatcher(fn, max_batch=max_batch)
        b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(40)), return_exceptions=True)
        await b.stop()
        return out

    out = asyncio.run(main(16))
    assert out[:13] == [i * 10 for i in range(13)] and isinstance(out[13], ValueError) and out[39] == 390
    assert max(sizes) == 16 and len(sizes) <= 4  # 40 calls in a few batches of at most 16
    sizes.clear()
    assert asyncio.run(main(1))[5] == 50 and sizes == [1] * 40


def test_serve_command_binds_loopback_batches_and_stops_on_sigterm(toy, tmp_path):
    with child_server(toy, tmp_path / "server.log") as server:
        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(lambda i: httpx.post(f"{server.base}/recommend", json={"history": [i, i + 1], "k": 5},
                                                       timeout=60).status_code, range(48)))
        assert codes == [200] * 48
        health = httpx.get(f"{server.base}/health").json()
        assert health["requests"] == 48 and health["batches"] < 48  # concurrent requests shared beam searches
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
    out, port = server.log.read_text(), server.base.rsplit(":", 1)[1]
    # uvicorn finishes the requests under way, runs the app's shutdown, then exits by the signal it caught
    assert server.proc.returncode == -signal.SIGTERM, out
    assert f"Uvicorn running on http://127.0.0.1:{port}" in out and "Application shutdown complete" in out
    assert "Finished server process" in out and "Traceback" not in out
