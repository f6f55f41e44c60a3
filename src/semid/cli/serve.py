"""``semid recommend`` (ask a finished run for recommendations) and ``semid serve`` (its API and page).

Both only read the run folder: they take no lock, so they can serve a run another command writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from semid.cli.common import VerboseOpt, app, reports_errors

RunArg = Annotated[Path, typer.Argument(help="a finished run folder (e.g. runs/beauty)", show_default=False)]
ModelsOpt = Annotated[list[str] | None, typer.Option("--model", "-m", help="model folder(s) to load (default: every usable one)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, or cuda when a GPU is present")]


@app.command("recommend")
@reports_errors
def recommend_cmd(
    run: RunArg,
    history: Annotated[str, typer.Option("--history", help="item IDs or ASINs, oldest first, separated by commas")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="model folder (default: the run's model on Semantic IDs)")] = None,
    k: Annotated[int, typer.Option("-k", help="how many items")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    device: DeviceOpt = "cpu",
    verbose: VerboseOpt = False,
) -> None:
    """What should a user with this history see next? Ranked items with titles and Semantic IDs."""
    from semid.serve.api import load

    loaded = load(run, models=[model] if model else None, device=device)
    out = loaded.recommend([h.strip() for h in history.split(",") if h.strip()], k=k, model=model)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    t = Table(title=f"{out['model']} on {run}: after {', '.join(h['asin'] for h in out['history'])}")
    score = out["score_kind"] or "score"
    for col, justify in (("rank", "right"), (score, "right"), ("item_id", "right"), ("asin", "left"), ("Semantic ID", "left"),
                         ("title", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for it in out["items"]:
        value = "" if it["score"] is None else f"{it['score']:.4g}"
        t.add_row(str(it["rank"]), value, str(it["item_id"]), it["asin"], "-".join(map(str, it["sid"])), it["title"])
    Console().print(t)


@app.command("serve")
@reports_errors
def serve_cmd(
    run: RunArg,
    host: Annotated[str, typer.Option("--host", help="address to bind (loopback unless you mean to expose it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    models: ModelsOpt = None,
    batching: Annotated[bool, typer.Option("--batching/--no-batching", help="answer concurrent /recommend requests in one model call")] = True,
    max_batch: Annotated[int, typer.Option("--max-batch", help="most requests in one batch", min=1)] = 64,
    device: DeviceOpt = "cpu",
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads per model call (1: the batch uses one core and "
                                                           "the server the other)", min=1)] = 1,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a finished run: the JSON API (/docs) and a page at http://HOST:PORT/ (Ctrl-C or SIGTERM stops it)."""
    from semid.core.errors import DataError
    from semid.serve.app import serve

    if not run.is_dir():
        raise DataError(f"{run} is not a run folder: pass the --out folder of `semid run` (e.g. runs/beauty)")
    serve(str(run), host=host, port=port, batching=batching, max_batch=max_batch, models=models, device=device, threads=threads)
