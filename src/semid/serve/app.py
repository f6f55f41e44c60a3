"""``semid serve``: the JSON API of a loaded run (:mod:`semid.serve.api`) and its page, on FastAPI.

    GET  /health            loading | ready | failed            GET  /models     what the run serves
    POST /recommend         {"history": [...], "k": 10, "model": "tiger"}  (micro-batched)
    GET  /items/{id|asin}   GET /search?q=…   GET /tree?prefix=12,200   GET /items-under?prefix=12
    POST /assign            {"items": ["a new product's text", …]}
    GET  /                  the page (static files shipped in the package)   GET /docs, /openapi.json

The run loads in a background thread once the server is up; until it is ready every API call gets
503. Bad input gets a 4xx naming the problem (bad JSON 400, unknown item 404, oversized body 413,
invalid values 422); nothing a client sends stops the server.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from semid.core.errors import SemidError
from semid.core.log import log
from semid.serve.api import MAX_HISTORY, LoadedRun, load
from semid.serve.batcher import MicroBatcher
from semid.serve.catalogue import InputError
from semid.serve.coldstart import MAX_NEW, MAX_TEXT

STATIC = Path(str(resources.files("semid.serve") / "static"))  # the page: files shipped in the package, nothing else
MAX_BODY = 64 * 1024  # bytes of one request body
Key = StrictInt | Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]


class RecommendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"history": [0, 2], "k": 10}]})
    history: list[Key] = Field(min_length=1, max_length=MAX_HISTORY, description="item IDs or ASINs, oldest first")
    k: int = Field(10, ge=1, le=100, description="list length (at most the depth the models rank to, /models)")
    model: Annotated[str, StringConstraints(max_length=100)] | None = Field(None, description="a served model (default: /models)")
    exclude_history: bool = Field(True, description="leave the history's own items out of the list")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]] = Field(
        min_length=1, max_length=MAX_NEW, description="new products' texts (title, brand, description …)")


class ItemOut(BaseModel):
    item_id: int
    asin: str
    title: str
    sid: list[int] = Field(description="Semantic ID: the codes, then the collision code")


class RankedOut(ItemOut):
    rank: int
    score: float | None = Field(description="the model's score of the item (see score_kind); higher ranks first")


class RecommendOut(BaseModel):
    model: str
    kind: str
    k: int
    score_kind: str | None = Field(description="what the scores are: logit (SASRec, GRU4Rec, BERT4Rec), log-prob "
                                              "(of the whole Semantic ID: TIGER, SID models), similarity (KNN), training count (Pop)")
    history: list[ItemOut]
    items: list[RankedOut]


class LimitBody:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app reads it."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = JSONResponse({"detail": f"the request body is over {self.max_bytes} bytes"}, status_code=413)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await too_big(scope, receive, send)
        body, more = b"", True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if len(body) > self.max_bytes:
                return await too_big(scope, receive, send)
            more = msg.get("more_body", False)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"detail": f"the request body is not valid JSON: {errors[0].get('ctx', {}).get('error', '')}".rstrip(": ")},
                            status_code=400)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": detail}, status_code=422)


async def ready(request: Request) -> LoadedRun:
    """The loaded run; 503 while it loads, 500 when loading failed."""
    state = request.app.state.semid
    if state["error"]:
        raise HTTPException(500, f"the run could not be loaded: {state['error']}")
    if state["run"] is None:
        raise HTTPException(503, "the models are still loading; retry in a few seconds", headers={"Retry-After": "2"})
    return state["run"]


Ready = Annotated[LoadedRun, Depends(ready)]


def _prefix(prefix: str) -> list[int]:
    try:
        return [int(c) for c in prefix.split(",") if c.strip()] if prefix else []
    except ValueError:
        raise InputError(f"prefix must be codes separated by commas, e.g. 12,200; got {prefix!r}") from None


def create_app(loader: Callable[[], LoadedRun], *, batching: bool = True, max_batch: int = 64, max_wait_s: float = 0.002,
               max_body: int = MAX_BODY) -> FastAPI:
    """The app; ``loader`` builds the :class:`LoadedRun` in a background thread after start-up."""
    state: dict[str, Any] = {"run": None, "error": None, "batcher": None}

    def _load() -> None:
        try:
            run = loader()
            # the libraries' and the run's objects (about 500,000) live as long as the server: frozen,
            # the full collections that come every few seconds under load skip them (they took
            # 300 ms, a stall of every request under way, on Beauty)
            gc.collect()
            gc.freeze()
            state["run"] = run
            log.info("serve: ready (%s)", ", ".join(state["run"].models))
        except Exception as exc:  # reported by /health and every call, the server stays up
            state["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SemidError) else str(exc)
            log.error("serve: the run could not be loaded: %s", state["error"])

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher = MicroBatcher(lambda queries: state["run"].answer(queries), max_batch=max_batch if batching else 1,
                               max_wait_s=max_wait_s if batching else 0.0)
        state["batcher"] = batcher
        batcher.start()
        threading.Thread(target=_load, name="semid-load", daemon=True).start()
        yield
        await batcher.stop()

    app = FastAPIOffline(title="semid", summary="Recommendations, Semantic IDs and cold-start IDs from a finished semid run",
                         lifespan=lifespan)  # /docs and /redoc from packaged files: no CDN
    app.state.semid = state
    app.add_middleware(LimitBody, max_bytes=max_body)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, lambda _, exc: JSONResponse({"detail": str(exc)}, status_code=exc.status))
    app.add_exception_handler(SemidError, lambda _, exc: JSONResponse({"detail": str(exc)}, status_code=500))
    app.add_exception_handler(Exception, lambda _, exc: JSONResponse(
        {"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        status = "failed" if state["error"] else "ready" if state["run"] else "loading"
        b = state["batcher"]
        return {"status": status, "error": state["error"], "batching": batching,
                "batches": b.batches if b else 0, "requests": b.requests if b else 0}

    @app.get("/models")
    async def models(run: Ready) -> dict[str, Any]:
        return run.describe_models()

    @app.post("/recommend", response_model=RecommendOut)
    async def recommend(body: RecommendIn, run: Ready) -> dict[str, Any]:
        """The ``k`` items a model ranks first after a history (micro-batched with concurrent requests)."""
        return await state["batcher"].submit(run.query(body.history, body.k, body.model, body.exclude_history))

    @app.get("/items/{key}")
    def item(key: Annotated[str, StringConstraints(max_length=64)], run: Ready) -> dict[str, Any]:
        return run.item(key)

    @app.get("/search", response_model=list[ItemOut])
    def search(run: Ready, q: Annotated[str, Query(min_length=1, max_length=200)],
               limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict[str, Any]]:
        return run.search(q, limit)

    @app.get("/tree")
    def tree(run: Ready, prefix: Annotated[str, Query(max_length=100, description="codes, e.g. 12,200")] = "") -> dict[str, Any]:
        return run.tree(_prefix(prefix))

    @app.get("/items-under")
    def items_under(run: Ready, prefix: Annotated[str, Query(max_length=100)] = "",
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        return run.items_under(_prefix(prefix), limit)

    @app.post("/assign")
    def assign(body: AssignIn, run: Ready) -> list[dict[str, Any]]:
        """Semantic IDs for new products (the frozen ID model), their nearest items and whether TIGER can emit them."""
        return run.assign(body.items)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(run_dir: str, *, host: str = "127.0.0.1", port: int = 8000, batching: bool = True, max_batch: int = 64,
          **load_options: Any) -> None:
    """Serve ``run_dir`` until SIGINT or SIGTERM (uvicorn finishes the requests under way, then stops)."""
    app = create_app(lambda: load(run_dir, **load_options), batching=batching, max_batch=max_batch)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
