"""``semid embed``: sentence embeddings of the prepared item texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semid.cli.common import ConfigOpt, DatasetOpt, ForceOpt, OutOpt, Overrides, VerboseOpt, app, reports_errors, run_dir
from semid.core import config as cfgmod


@app.command("embed")
@reports_errors
def embed_cmd(
    overrides: Overrides = None,
    dataset: DatasetOpt = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    verbose: VerboseOpt = False,
    source: Annotated[Path | None, typer.Option("--from", help="take embeddings computed elsewhere (Ray, Spark): "
                                                "Parquet with item_id or asin and an embedding column; pass "
                                                "model=<the encoder it used>")] = None,
) -> None:
    """Embed every item's text (→ RUN/embed/item_embeddings.npy); cached by (model, texts)."""
    from semid.core.artifacts import load_manifest
    from semid.core.run import RunFolder
    from semid.embed import encode
    from semid.embed.config import EmbedConfig

    cfg = cfgmod.load(EmbedConfig, config, overrides, section="embed")
    run = RunFolder(run_dir(out, dataset))
    if source is not None:
        from semid.embed import imported

        folder = imported.run(cfg, run.root, source, force=force)
    else:
        folder = encode.run(cfg, run.root, force=force)
    m = load_manifest(folder) or {}
    cache = f"imported from {source}" if source else "cache hit" if m.get("cache_hit") else f"encode {m.get('encode_s')} s"
    typer.echo(f"{run.embeddings}: {m.get('n_texts')} × {m.get('dim')} ({m.get('model')}, {cache})")
