"""Embeddings computed elsewhere: ``semid embed --from`` takes Parquet into a run (checked row by
row, with clear errors), and the Ray Data job writes what it takes (run on a local Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from semid.cli import app
from semid.core.errors import DataError
from semid.core.run import RunFolder
from semid.embed import imported
from semid.embed.config import EmbedConfig


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("import") / "toy"
    res = invoke("prepare", "--dataset", "toy", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out


def write_parts(folder: Path, keys: list, x: np.ndarray, key: str = "item_id", fixed: bool = True) -> Path:
    """The source as two shuffled part files, as a cluster job writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(0).permutation(len(keys))
    for part, rows in enumerate(np.array_split(order, 2)):
        flat = pa.array(x[rows].reshape(-1).astype(np.float32))
        col = pa.FixedSizeListArray.from_arrays(flat, x.shape[1]) if fixed else \
            pa.ListArray.from_arrays(pa.array(np.arange(len(rows) + 1) * x.shape[1], pa.int32()), flat)
        pq.write_table(pa.table({key: [keys[i] for i in rows], "embedding": col}), folder / f"part-{part}.parquet")
    return folder


def test_import_puts_rows_in_item_order_and_ids_train_on_them(toy, tmp_path):
    n = RunFolder(toy).table("items").height
    x = np.random.default_rng(1).normal(size=(n, 12)).astype(np.float32)
    src = write_parts(tmp_path / "emb", list(range(n)), x)
    res = invoke("embed", "--out", str(toy), "--from", str(src), "model=my-encoder", "--force")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "imported from" in " ".join(res.output.split())
    got = np.load(RunFolder(toy).embeddings)
    assert np.allclose(got, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)  # item order, unit length
    manifest = json.loads((RunFolder(toy).embed / "manifest.json").read_text())
    assert manifest["config"]["model"] == "my-encoder" and manifest["matched_by"] == "item_id"
    assert EmbedConfig(**manifest["config"]).model == "my-encoder"  # new items are embedded with it
    again = invoke("embed", "--out", str(toy), "--from", str(src), "model=my-encoder")
    # reused (the log wraps long lines, so the words are matched across line breaks)
    assert again.exit_code == 0 and "up to date" in " ".join((again.output + str(again.stderr_bytes or b"")).split())
    res = invoke("ids", "train", "--out", str(toy), "method=rqkmeans", "codebook_size=8", "tsne_sample=0")
    assert res.exit_code == 0, res.output

    asins = RunFolder(toy).table("items").sort("item_id")["asin"].to_list()
    by_asin = write_parts(tmp_path / "emb-asin", asins, 2 * x, key="asin", fixed=False)
    imported.run(EmbedConfig(normalize=False), toy, by_asin, force=True)
    assert np.allclose(np.load(RunFolder(toy).embeddings), 2 * x, atol=1e-6)


@pytest.mark.parametrize("case,words", [
    ("missing", "have no embedding (e.g. item_id"),
    ("unknown", "rows name no catalogue item (e.g. 99999)"),
    ("twice", "items have more than one row"),
    ("nan", "non-finite values"),
    ("columns", "needs an 'embedding' column and 'item_id' or 'asin'"),
])
def test_bad_sources_are_clear_errors(toy, tmp_path, case, words):
    n = RunFolder(toy).table("items").height
    x = np.ones((n, 4), dtype=np.float32)
    keys = list(range(n))
    if case == "missing":
        keys, x = keys[:-3], x[:-3]
    elif case == "unknown":
        keys[0] = 99999
    elif case == "twice":
        keys[1] = 0
    elif case == "nan":
        x[5, 2] = np.nan
    src = write_parts(tmp_path / case, keys, x, key="id" if case == "columns" else "item_id")
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        imported.run(EmbedConfig(), toy, src, force=True)
    assert not list(RunFolder(toy).embed.glob("*.partial.npy"))


def test_ray_job_embeds_what_semid_embed_does(toy, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'semid[ray]')")
    from semid.embed import ray_job

    res = invoke("embed", "--out", str(toy), "--force")
    assert res.exit_code == 0, res.output
    local = np.load(RunFolder(toy).embeddings)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one for the actor, one to read
    try:
        rows = ray_job.embed(str(RunFolder(toy).table_path("items")), str(tmp_path / "ray-out"), actors=1,
                             rows_per_batch=128)
    finally:
        ray.shutdown()
    assert rows == len(local)
    res = invoke("embed", "--out", str(toy), "--from", str(tmp_path / "ray-out"), "--force")
    assert res.exit_code == 0, res.output
    assert np.allclose(np.load(RunFolder(toy).embeddings), local, atol=1e-5)
