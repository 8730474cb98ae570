"""The HTTP side: litquant's endpoints, error answers, page and metrics, on a FastAPI app.

The routes are the same whichever way the models run: :func:`add_routes` takes the coroutine that runs an
input through models. :func:`build_app` runs them in this process (:class:`~litquant.serve.batcher.Batcher`,
the default: a request costs the HTTP work and the model, nothing between);
:func:`litquant.serve.litserve_server.build_server` sends them to LitServe worker processes.

Inputs are decoded and checked here (:mod:`litquant.serve.inputs`) before they reach a batch: one bad upload
must never fail a batch of good ones.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from litquant.serve.batcher import Batcher, ModelFailed
from litquant.serve.inputs import read_input
from litquant.serve.metrics import Metrics
from litquant.serve.models import Model

MODEL_SUFFIXES = (".pt2", ".onnx", ".ckpt")
STATIC = resources.files("litquant.serve") / "static"
COUNTED = ("/predict", "/compare")

#: Runs one 28×28 image through the named models: name → probabilities, inference_ms, batch_size.
Submit = Callable[[np.ndarray, list[str]], Awaitable[dict[str, dict[str, Any]]]]


@dataclass
class ServedModel:
    """A model to serve: its name in requests, its file, and what ``GET /models`` says about it."""

    name: str
    path: Path
    description: dict[str, Any] = field(default_factory=dict)


def served_models(specs: list[str]) -> list[ServedModel]:
    """``PATH`` or ``NAME=PATH`` arguments to models (named after the file stem by default), checked."""
    models: list[ServedModel] = []
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        path = Path(path)
        name = name or path.stem
        if path.suffix not in MODEL_SUFFIXES:
            raise ValueError(f"{path}: not a model file; give .pt2/.onnx artifacts or .ckpt checkpoints")
        if not path.is_file():
            raise ValueError(f"{path}: no such model file; check the path")
        if any(model.name == name for model in models):
            raise ValueError(f"two models named {name!r}; name them apart with NAME=PATH")
        models.append(ServedModel(name, path, describe(path)))
    if not models:
        raise ValueError("no models given; pass .pt2/.onnx artifacts or .ckpt checkpoints")
    return models


def describe(path: Path) -> dict[str, Any]:
    """Method, precision, accuracy and size of a model file, from the description inside an artifact."""
    from litquant.artifacts.loading import read_description

    meta = read_description(path).to_dict() if path.suffix != ".ckpt" else {}
    return {"file": path.name, "kind": path.suffix.lstrip("."),
            "method": meta.get("method", "checkpoint" if path.suffix == ".ckpt" else None),
            "precision": meta.get("precision", "fp32" if path.suffix == ".ckpt" else None),
            "accuracy": meta.get("accuracy"), "size_bytes": path.stat().st_size}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class CountRequests:
    """ASGI middleware: the status and server-side latency of every ``/predict`` and ``/compare`` request (a
    plain ASGI wrapper: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in COUNTED:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.record_request(path, status[0], (time.perf_counter() - start) * 1000.0)


def add_routes(app: FastAPI, models: list[ServedModel], submit: Submit, settings: dict[str, Any]) -> None:
    """litquant's endpoints, page, error answers and metrics on ``app``; ``settings`` are shown by
    ``GET /models``."""
    names = [model.name for model in models]
    metrics = Metrics()
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) != "/"]
    app.add_middleware(CountRequests, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    def choose(model: str | None) -> str:
        if model is None:
            return names[0]
        if model not in names:
            raise HTTPException(404, f"unknown model {model[:64]!r}; served: {', '.join(names)}")
        return model

    async def run(request: Request, everyone: bool, show_input: bool = True) -> dict[str, Any]:
        start = time.perf_counter()
        pixels, model = await read_input(request)
        wanted = names if everyone else [choose(model)]
        try:
            answers = await submit(pixels, wanted)
        except ModelFailed:
            raise HTTPException(500, "the model failed on this input; see the server log") from None
        latency_ms = (time.perf_counter() - start) * 1000.0
        results = {}
        for name in wanted:
            answer = answers[name]
            probabilities = answer["probabilities"]
            metrics.record_prediction(name, answer["batch_size"])
            results[name] = {"model": name, "label": int(np.argmax(probabilities)), "probabilities": probabilities,
                             "latency_ms": latency_ms, "inference_ms": answer["inference_ms"],
                             "batch_size": answer["batch_size"]}
        return {"results": results, **({"input": png_data_url(pixels)} if show_input else {})}

    @app.post("/predict", summary="Classify one digit image with one model")
    async def predict(request: Request, input: bool = False) -> dict[str, Any]:
        """An image (multipart ``file``, raw ``image/*`` body, or JSON ``image``/``pixels``) and an optional
        ``model`` (default: the first served): label, probabilities, model and server-side latency (ms); with
        ``input=true``, also the 28×28 image the model saw, as a PNG data URL."""
        outcome = await run(request, everyone=False, show_input=input)
        (result,) = outcome["results"].values()
        return JSONResponse({**result, **({"input": outcome["input"]} if input else {})})

    @app.post("/compare", summary="Classify one digit image with every served model")
    async def compare(request: Request) -> dict[str, Any]:
        """The same input as ``/predict``, through every served model: one result per model, side by side."""
        return JSONResponse(await run(request, everyone=True))

    @app.get("/models", summary="The served models")
    async def list_models() -> dict[str, Any]:
        return {"default": names[0], "models": [{"name": m.name, **m.description} for m in models], **settings}

    @app.get("/metrics", summary="Request counts, batch sizes and latency percentiles")
    async def get_metrics(format: str = "prometheus") -> Response:
        if format == "json":
            return JSONResponse(metrics.as_dict())
        return PlainTextResponse(metrics.prometheus(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        files = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in files:
            raise HTTPException(404, f"no static file {name[:64]!r}")
        return Response((STATIC / name).read_text(encoding="utf-8"), media_type=files[name])


def build_app(models: list[ServedModel], loaded: dict[str, Model], max_batch_size: int = 64,
              batch_timeout: float = 0.0) -> FastAPI:
    """An app that runs ``loaded`` (name → model, already compiled) in this process, in dynamic batches."""
    batcher = Batcher(loaded, max_batch_size, batch_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        # What is loaded by now (the libraries, the models) lives as long as the server: kept out of the garbage
        # collector's full passes, which then scan only what requests allocate. Without this, a full pass over
        # the libraries' objects stalled every request for about 200 ms, once every few thousand requests.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="litquant serve", lifespan=lifespan)

    @app.get("/health", summary="200 once every model is loaded and compiled")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    add_routes(app, models, batcher.submit, {"workers": 0, "max_batch_size": max_batch_size,
                                             "batch_timeout": batch_timeout})
    return app
