"""``semid download``: fetch the official raw Amazon files for a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import DataDirOpt, VerboseOpt, app, data_dir, reports_errors


@app.command("download")
@reports_errors
def download_cmd(
    dataset: Annotated[str, typer.Argument(
        help="beauty, sports, office, or <release>:<Category> with release amazon2014, amazon2018 "
             "or amazon2023 (e.g. amazon2018:Industrial_and_Scientific)")],
    data_dir_opt: DataDirOpt = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", help="base URL of a copy laid out like the official site, or holding the files flat")] = None,
    meta: Annotated[bool, typer.Option("--meta/--no-meta", help="also download item metadata")] = True,
    checksum: Annotated[Path | None, typer.Option(
        "--checksum", help="sha256sum/md5sum-style file of expected digests", exists=True, dir_okay=False)] = None,
    no_checksum: Annotated[bool, typer.Option("--no-checksum", help="skip every checksum check")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Download a dataset's raw review (and metadata) files, resuming partial downloads."""
    from semid.data.download import download, read_checksum_file

    root = data_dir(data_dir_opt) or Path("data")
    sums = read_checksum_file(checksum) if checksum else None
    folder = download(dataset, root, mirror=mirror, meta=meta, checksums=sums, verify=not no_checksum)
    typer.echo(str(folder))
