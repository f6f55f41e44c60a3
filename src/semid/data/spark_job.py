"""Warehouse-scale cleaning on Spark: the events part of ``semid prepare`` as a PySpark job.

    spark-submit --master yarn -m semid.data.spark_job --format amazon2023 \\
        --reviews hdfs:///amazon2023/Books.jsonl.gz --meta /data/amazon2023/meta_Books.jsonl.gz \\
        --out hdfs:///semid/books-events --k-core 5
    python -m semid.data.spark_job --master 'local[*]' ...        # the same job on one machine
    semid prepare --format spark --path <out> --out runs/books      # items, ids, splits, stats

The job reads the raw reviews of an Amazon 2018 or 2023 dump and does what ``semid prepare``
does to events, in the same order and with the same rules (:mod:`semid.data.filtering`): drop
events without a user or item, drop ratings below ``--min-rating``, keep the earliest of repeated
(user, item) events (by time, then file order), then the iterative k-core. It writes the kept
events as Parquet (``user, item, timestamp, rating`` plus their file position) and ``job.json``
(the raw count, every dropped row by reason, the settings and the metadata file). ``semid prepare
--format spark`` then builds items, ids, item text and splits from that much smaller table;
its outputs are those of ``semid prepare`` on the raw file (``tests/test_spark_job.py``).

Malformed lines (bad JSON, or no user or item) are counted and dropped (Spark's permissive JSON
mode), never fatal: as ``semid prepare strict=false`` does. The item-text
policy ``missing_text=drop`` needs the metadata before the k-core and is not available here; for
the same reason ``stats.json`` counts ``items_without_text`` among the items the k-core kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from semid.data.readers import amazon

JOB_FILE, EVENTS_DIR = "job.json", "events"
LAYOUTS = ("amazon2018", "amazon2023")
# the order of the events in prepare (filtering.order_events): users by their first event in the
# file, then each user's events by time (missing last) and file position
ORDER = ("_u_file", "_u_block", "_u_row", "timestamp", "_file", "_block", "_row")
BAD = "_corrupt_record"


def layout_of(fmt: str) -> amazon.Layout:
    if fmt not in LAYOUTS:
        raise SystemExit(f"--format must be one of {', '.join(LAYOUTS)} (Amazon 2014 files are Python literals, "
                         "not JSON: prepare them with `semid prepare engine=streaming`)")
    return amazon.AMAZON2018 if fmt == "amazon2018" else amazon.AMAZON2023


def read_events(spark, reviews: list[str], fmt: str):
    """The reviews as ``user, item, timestamp, rating, _file, _block, _row`` (file order = those
    three) and the malformed lines by reason (bad JSON; no user or item, which the readers skip too)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    lay = layout_of(fmt)
    schema = T.StructType([T.StructField(lay.user, T.StringType()), T.StructField(lay.item, T.StringType()),
                           T.StructField(lay.time, T.LongType()), T.StructField(lay.rating, T.DoubleType()),
                           T.StructField(BAD, T.StringType())])
    raw = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", BAD)
           .json(reviews)
           .select("*", F.col("_metadata.file_path").alias("_file"), F.col("_metadata.file_block_start").alias("_block"),
                   F.monotonically_increasing_id().alias("_row")))
    raw = raw.cache()
    no_id = F.col(lay.user).isNull() | F.col(lay.item).isNull() | (F.length(lay.user) == 0) | (F.length(lay.item) == 0)
    bad = {"malformed JSON": raw.filter(F.col(BAD).isNotNull()).count(),
           "missing user or item": raw.filter(F.col(BAD).isNull() & no_id).count()}  # as the readers skip them
    ts = F.col(lay.time) if lay.time_divisor == 1 else F.floor(F.col(lay.time) / lay.time_divisor)
    events = raw.filter(F.col(BAD).isNull() & ~no_id).select(
        F.col(lay.user).alias("user"), F.col(lay.item).alias("item"), ts.cast("long").alias("timestamp"),
        F.col(lay.rating).alias("rating"), "_file", "_block", "_row")
    return events, bad


def clean(events, n: int, *, min_rating: float | None, dedup: bool, k_user: int, k_item: int,
          dropped: dict[str, int], checkpoint: bool = True):
    """The rules of :mod:`semid.data.filtering`, on a Spark DataFrame of ``n`` events; ``dropped``
    gains each count. Returns (events, their count, k-core rounds); each table is counted once."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    def keep(kept, reason: str):
        nonlocal n
        left = kept.count()
        dropped[reason] = dropped.get(reason, 0) + n - left
        n = left
        return kept

    ok = (F.col("user").isNotNull() & F.col("item").isNotNull() & (F.length("user") > 0) & (F.length("item") > 0))
    events = keep(events.filter(ok).cache(), "missing user or item")
    if min_rating is not None:
        events = keep(events.filter(F.col("rating").isNull() | (F.col("rating") >= min_rating)).cache(),
                      f"rating below {min_rating}")
    # users keep the order of their first event in the file (filtering.order_events), whatever is dropped later
    first = F.min(F.struct("_file", "_block", "_row")).over(Window.partitionBy("user"))
    events = events.withColumn("_first", first).select("*", *[F.col(f"_first.{c}").alias(f"_u{c}") for c in
                                                           ("_file", "_block", "_row")]).drop("_first")
    if dedup:  # the earliest of each (user, item): time first (missing last), then file order
        first = Window.partitionBy("user", "item").orderBy(F.col("timestamp").asc_nulls_last(), "_file", "_block", "_row")
        events = keep(events.withColumn("_n", F.row_number().over(first)).filter("_n = 1").drop("_n").cache(),
                      "repeated (user, item) event")
    if k_user <= 1 and k_item <= 1:
        return events, n, 0
    start, rounds = n, 0
    while n:
        rounds += 1
        users = events.groupBy("user").count().filter(F.col("count") >= k_user).select("user")
        items = events.groupBy("item").count().filter(F.col("count") >= k_item).select("item")
        kept = events.join(users, "user", "left_semi").join(items, "item", "left_semi")
        kept = kept.localCheckpoint() if checkpoint else kept.cache()  # cut the lineage of each round
        left = kept.count()
        if left == n:
            break
        events, n = kept, left
    dropped[f"k-core (users < {k_user} or items < {k_item} events)"] = start - n
    return events, n, rounds


def run(spark, *, fmt: str, reviews: list[str], out: str, meta: str | None, min_rating: float | None,
        dedup: bool, k_user: int, k_item: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    events, bad = read_events(spark, reviews, fmt)
    raw = events.count()
    dropped: dict[str, int] = {}
    events, kept, rounds = clean(events, raw, min_rating=min_rating, dedup=dedup, k_user=k_user, k_item=k_item,
                              dropped=dropped)
    events.select("user", "item", "rating", *ORDER).write.mode("overwrite").parquet(
        f"{out.rstrip('/')}/{EVENTS_DIR}")
    job = {"format": fmt, "reviews": reviews, "meta": meta, "source_events": raw, "malformed_lines": bad,
           "dropped_rows": dropped, "events": kept, "k_core": {"users": k_user, "items": k_item}, "k_core_rounds": rounds,
           "min_rating": min_rating, "dedup": dedup, "spark": spark.version, "seconds": round(time.perf_counter() - t0, 1)}
    return job


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semid.data.spark_job", description=__doc__.splitlines()[0])
    ap.add_argument("--format", required=True, help=" or ".join(LAYOUTS))
    ap.add_argument("--reviews", required=True, nargs="+", help="the reviews file(s): local paths or any URI Spark reads")
    ap.add_argument("--meta", help="the metadata file, recorded for `semid prepare --format spark` (a local path)")
    ap.add_argument("--out", required=True, help="output folder (job.json is written there when it is local)")
    ap.add_argument("--k-core", type=int, default=5)
    ap.add_argument("--user-k", type=int)
    ap.add_argument("--item-k", type=int)
    ap.add_argument("--min-rating", type=float)
    ap.add_argument("--no-dedup", action="store_true", help="keep repeated (user, item) events")
    ap.add_argument("--master", help="Spark master when not run by spark-submit, e.g. local[*]")
    args = ap.parse_args(argv)
    layout_of(args.format)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("semid-prepare")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        k_user = args.user_k if args.user_k is not None else args.k_core
        k_item = args.item_k if args.item_k is not None else args.k_core
        job = run(spark, fmt=args.format, reviews=args.reviews, out=args.out,
                  meta=str(Path(args.meta).resolve()) if args.meta else None, min_rating=args.min_rating,
                  dedup=not args.no_dedup, k_user=k_user, k_item=k_item)
    finally:
        spark.stop()
    text = json.dumps(job, indent=2) + "\n"
    if "://" in args.out and not args.out.startswith("file://"):
        print(text)  # a cluster path: copy job.json next to the events yourself
    else:
        path = Path(args.out.removeprefix("file://")) / JOB_FILE
        path.write_text(text)
    print(f"semid spark job: {job['source_events']:,} events read, {job['events']:,} kept in {job['seconds']} s → {args.out}")


if __name__ == "__main__":
    main()
