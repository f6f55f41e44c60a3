"""The one table of named datasets: where their files live under the data folder, in which format.

A named dataset is looked for in this order: the raw Amazon files (as ``semid download`` lays
them out), then the benchmark files of the ``../shared/data`` layout. ``--path`` with
``--format`` reads any folder instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from semid.core.errors import DataError
from semid.data.readers import FORMATS


@dataclass(frozen=True)
class Layout:
    format: str
    folder: str            # under the data folder
    marker: str            # a file (glob) whose presence selects this layout
    category: str | None = None


NAMED: dict[str, list[Layout]] = {
    "beauty": [Layout("amazon2014", "amazon2014_beauty", "reviews_Beauty_5.json*", "Beauty"),
               Layout("p5", "amazon2014_beauty", "p5/sequential_data.txt"),
               Layout("gram", "amazon2014_beauty", "gram/user_sequence.txt")],
    "sports": [Layout("amazon2014", "amazon2014_sports", "reviews_Sports_and_Outdoors_5.json*", "Sports_and_Outdoors"),
               Layout("p5", "amazon2014_sports", "p5/sequential_data.txt"),
               Layout("gram", "amazon2014_sports", "gram/user_sequence.txt")],
    "office": [Layout("amazon2014", "amazon2014_office", "reviews_Office_Products_5.json*", "Office_Products"),
               Layout("csv", "amazon2014_office_lrd", "train.csv")],
    "scientific": [Layout("unisrec", "amazon2018_scientific_unisrec", "*.test.inter")],
}


# file patterns that identify a format in a folder given by --path, most specific first
DETECT = [("reviews_*.json*", "amazon2014"), ("*.jsonl*", "amazon2023"), ("*_5.json*", "amazon2018"),
          ("meta_*.json*", "amazon2018"), ("p5/sequential_data.txt", "p5"), ("sequential_data.txt", "p5"),
          ("gram/user_sequence.txt", "gram"), ("user_sequence.txt", "gram"), ("*.inter", "unisrec"),
          ("*.csv", "csv")]


def resolve(dataset: str, fmt: str | None, path: Path | None, data_dir: Path | None) -> tuple[str, Path | None, str | None]:
    """Return ``(format, folder, category)`` for a dataset, or raise a DataError saying how to get it."""
    if fmt == "toy" or (dataset == "toy" and fmt is None):
        return "toy", None, None
    if path is not None:
        path = Path(path).resolve()
        if not path.exists():
            raise DataError("--path does not exist", path=path)
        if fmt is None:
            for marker, guess in DETECT:
                if any(path.glob(marker)):
                    return guess, path, None
            raise DataError(f"cannot tell the format of this folder; pass --format {'|'.join(FORMATS)}", path=path)
        return fmt, path, None
    if dataset not in NAMED:
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join([*NAMED, 'toy'])}, "
                        "or --format and --path for a folder of your own")
    roots = [data_dir] if data_dir is not None else []
    tried = []
    for root in roots:
        for lay in NAMED[dataset]:
            if fmt is not None and lay.format != fmt:
                continue
            for folder in (Path(root) / lay.folder, Path(root)):
                tried.append(str(folder / lay.marker))
                if any(folder.glob(lay.marker)):
                    return lay.format, folder.resolve(), lay.category
    hint = (f"run `semid download {dataset} --data-dir DIR` (or `make demo`, which downloads it), "
            "or point --data-dir / SEMID_DATA_DIR at a folder holding it (e.g. ../shared/data)")
    if not roots:
        raise DataError(f"no data folder given for dataset {dataset!r}: {hint}")
    raise DataError(f"dataset {dataset!r} not found; looked for {', '.join(tried)}. To get it: {hint}")
