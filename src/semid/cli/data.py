"""``semid prepare``: read, clean, filter and split a dataset into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from semid.cli.common import ConfigOpt, DataDirOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, data_dir, reports_errors, run_dir
from semid.core import config as cfgmod
from semid.core.artifacts import read_json
from semid.data.readers import FORMATS


@app.command()
@reports_errors
def prepare(
    overrides: Overrides = None,
    dataset: DatasetOpt = None,
    data_dir_: DataDirOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="|".join(FORMATS))] = None,
    path: Annotated[Path | None, typer.Option("--path", help="folder (or file) of a dataset in --format")] = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Read a dataset, clean it, k-core filter it, build item text and split it (→ RUN/data)."""
    from semid.data import prepare as stage
    from semid.data.config import PrepareConfig

    cfg = cfgmod.load(PrepareConfig, config, overrides, section="prepare", dataset=dataset, format=fmt)
    if path is not None and "dataset" not in cfg.model_fields_set:  # a user's own folder is named after itself
        cfg = cfg.model_copy(update={"dataset": Path(path).resolve().name})
    folder = stage.run(cfg, run_dir(out, cfg.dataset), data_dir=data_dir(data_dir_), path=path, force=force)
    _print_stats(folder)


def _print_stats(folder: Path) -> None:
    s = read_json(folder / "stats.json")
    t = Table(title=f"prepared: {folder}", show_header=False)
    for key in ("users", "items", "interactions"):
        t.add_row(key, f"{s[key]:,}")
    t.add_row("sequence length", "min {min}, median {p50:g}, mean {mean}, max {max}".format(**s["sequence_length"]))
    text = s["item_text"]
    titles = s["reader_notes"].get("title_source_counts", {}).get("title", text["items_with_title"])
    t.add_row("item text", f"{text['items_with_text']:,} items ({titles:,} with a real title, "
                           f"{text['items_with_brand']:,} with brand, {text['items_with_categories']:,} with categories)")
    t.add_row("split", f"{s['split']['protocol']}: train {s['split']['train_rows']:,}, "
                       f"val {s['split']['val_rows']:,}, test {s['split']['test_rows']:,} rows")
    if s["split"]["test_cold_rows"]:
        t.add_row("cold-start test rows", f"{s['split']['test_cold_rows']:,} ({s['split']['test_cold_items']:,} items)")
    for reason, n in {**s["dropped_rows"], **s["skipped_lines"]}.items():
        if n:
            t.add_row(f"dropped: {reason}", f"{n:,}")
    Console(stderr=True).print(t)
