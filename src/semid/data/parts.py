"""The output tables of the streaming ``prepare`` (:mod:`semid.data.streaming`), held as Parquet
part files and written one part at a time, so that memory holds one part (a range of users, or
:data:`~semid.data.streaming.ITEM_ROWS` items), whatever the size of the table.

Polars' streaming sinks over all the parts at once held memory that grew with the table (726 MB
to write 1.25M items of 50M generated reviews, against 321 MB for 125,000 items), so the Parquet
file is written row group by row group through pyarrow's ``ParquetWriter`` and the CSV file part
after part with one header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from semid.core import artifacts

ROW_GROUP = 65_536  # rows per Parquet row group of an output file


@dataclass(frozen=True)
class Parts:
    """A table as Parquet part files in order; ``step`` turns each part read into its output rows."""

    files: list[Path]
    step: Callable[[pl.DataFrame], pl.DataFrame] | None = None

    def frames(self, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        """Each part's output rows; ``columns``: read only these (``step`` must need no other)."""
        for path in self.files:
            df = pl.read_parquet(path, columns=columns)
            yield df if self.step is None else self.step(df)

    def height(self) -> int:
        """Rows in the part files, from their metadata (the engine's steps add columns, never rows)."""
        return sum(pq.read_metadata(path).num_rows for path in self.files)


def flat_lists(df: pl.DataFrame) -> pl.DataFrame:
    """List columns joined into strings for CSV (categories by " > ", others by spaces)."""
    return df.with_columns([pl.col(c).cast(pl.List(pl.String)).list.join(" > " if c == "categories" else " ")
                            for c, t in df.schema.items() if isinstance(t, pl.List)])


def write(out: Path, name: str, table: Parts, csv: bool) -> None:
    """Write ``out/<name>.parquet`` (and ``.csv``: lists joined, as the in-memory engine writes
    them) atomically, in one pass over the parts."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(artifacts.atomic_path(out / f"{name}.parquet"))
        text = stack.enter_context(open(stack.enter_context(artifacts.atomic_path(out / f"{name}.csv")), "wb")) if csv else None
        writer, schema = None, None
        for k, df in enumerate(table.frames()):
            schema = schema or df.schema
            arrow = df.cast(schema).to_arrow()
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(tmp, arrow.schema, compression="zstd"))
            if arrow.num_rows:  # an empty part adds no empty row group
                writer.write_table(arrow, row_group_size=ROW_GROUP)
            del arrow
            if text is not None:
                flat_lists(df).write_csv(text, include_header=k == 0)
        if writer is None:
            raise ValueError(f"{name}: a table of no parts")  # the streaming engine always has one
