"""Item embeddings on a Ray cluster: Ray Data reads the run's items, ``map_batches`` runs the
sentence encoder in a pool of actors (one per GPU, or CPU actors), and the vectors go to Parquet
that ``semid embed --from`` takes into the run.

    python -m semid.embed.ray_job --items runs/books/data/items.parquet --out s3://bucket/books-emb \\
        --model sentence-transformers/all-MiniLM-L6-v2 --actors 8 --gpus-per-actor 1
    semid embed --out runs/books --from <the Parquet folder> model=sentence-transformers/all-MiniLM-L6-v2

``--address`` joins a running cluster (``ray start --head`` / ``auto``); without it Ray starts
on this machine. Each actor loads the encoder once (:func:`semid.embed.encode.load_model`, so any
model name or local path works) and encodes batches longest-first, as ``semid embed`` does; the
output holds ``item_id`` and ``embedding`` (a fixed-size list of float32), in no particular order.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from semid.embed.chunked import encode_batches
from semid.embed.config import DEFAULT_MODEL
from semid.embed.encode import load_model


class Encoder:
    """The per-actor callable of ``map_batches``: one encoder, loaded when the actor starts."""

    def __init__(self, model: str, device: str, text_column: str, batch_size: int, normalize: bool,
                 max_seq_length: int | None):
        self.model = load_model(model, device, True, max_seq_length)
        self.text_column, self.batch_size, self.normalize = text_column, batch_size, normalize

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = [t or "" for t in batch.column(self.text_column).to_pylist()]
        x = encode_batches(self.model, texts, batch_size=self.batch_size, normalize=self.normalize)
        x = np.ascontiguousarray(x, dtype=np.float32)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        return pa.table({"item_id": batch.column("item_id"), "embedding": vectors})


def embed(items: str, out: str, *, model: str = DEFAULT_MODEL, text_column: str = "text", actors: int = 1,
          gpus_per_actor: float = 0, rows_per_batch: int = 4096, batch_size: int = 64, normalize: bool = True,
          max_seq_length: int | None = None) -> int:
    """Run the pipeline on the connected Ray cluster; returns the number of rows written."""
    import ray

    ds = ray.data.read_parquet(items, columns=["item_id", text_column])
    device = "cuda" if gpus_per_actor > 0 else "cpu"
    ds = ds.map_batches(Encoder, batch_format="pyarrow", batch_size=rows_per_batch, concurrency=actors,
                        num_gpus=gpus_per_actor or None,
                        fn_constructor_kwargs={"model": model, "device": device, "text_column": text_column,
                                               "batch_size": batch_size, "normalize": normalize,
                                               "max_seq_length": max_seq_length})
    ds.write_parquet(out)
    return ray.data.read_parquet(out, columns=["item_id"]).count()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semid.embed.ray_job", description=__doc__.splitlines()[0])
    ap.add_argument("--items", required=True, help="the run's data/items.parquet (or a copy on shared storage)")
    ap.add_argument("--out", required=True, help="output folder (local, s3://, gs://, … as Ray writes)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--actors", type=int, default=1, help="encoder actors (one per GPU, or CPU actors)")
    ap.add_argument("--gpus-per-actor", type=float, default=0)
    ap.add_argument("--rows-per-batch", type=int, default=4096, help="rows each map_batches call encodes")
    ap.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    ap.add_argument("--no-normalize", action="store_true")
    ap.add_argument("--max-seq-length", type=int)
    ap.add_argument("--address", help="a running Ray cluster (e.g. auto); default: start Ray here")
    args = ap.parse_args(argv)
    import ray

    ray.init(address=args.address)
    t0 = time.perf_counter()
    try:
        rows = embed(args.items, args.out, model=args.model, text_column=args.text_column, actors=args.actors,
                     gpus_per_actor=args.gpus_per_actor, rows_per_batch=args.rows_per_batch, batch_size=args.batch_size,
                     normalize=not args.no_normalize, max_seq_length=args.max_seq_length)
    finally:
        ray.shutdown()
    print(f"semid ray job: {rows:,} items embedded in {time.perf_counter() - t0:.1f} s → {args.out}; "
          f"next: semid embed --out <run> --from {args.out} model={args.model}")


if __name__ == "__main__":
    main()
