"""The HTTP side: LitServe's server with litquant's endpoints, input checks, page and metrics.

LitServe mounts ``/health`` and runs the workers with dynamic batching. Its default ``POST /predict`` takes one
JSON body for one ``LitAPI``; litquant needs two endpoints on one set of workers (``/predict`` and
``/compare``), uploads and input checks, so a :class:`~litserve.specs.base.LitSpec` (LitServe's extension
point for custom endpoints) submits to the workers' queue, and the routes are added to its FastAPI app.

Inputs are decoded and checked here, in the HTTP process, before they reach a batch: in LitServe a failing
``decode_request`` fails every request of its batch, so one bad upload must never get that far.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import os
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from litserve.specs.base import LitSpec
from litserve.utils import LitAPIStatus, ResponseBufferItem
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from litquant.images import ImageInputError, decode_image
from litquant.serve.metrics import Metrics
from litquant.serve.worker import DigitAPI

#: Largest request body (bytes); larger ones get 413 before they are read whole.
MAX_BODY_BYTES = 5 * 1024 * 1024
#: Largest image (pixels, read from the header before decoding); larger ones get 413.
MAX_IMAGE_PIXELS = 16_000_000
MODEL_SUFFIXES = (".pt2", ".onnx", ".ckpt")
STATIC = resources.files("litquant.serve") / "static"


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
    from litquant.artifacts import read_description

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


class DigitSpec(LitSpec):
    """Submits checked 28×28 images to the workers and waits for their answers (the ``LitSpec`` hooks pass
    requests and answers through: :class:`~litquant.serve.worker.DigitAPI` does the work)."""

    def __init__(self) -> None:
        super().__init__()
        self.api_path = "/predict"  # names the workers' queue; the routes are added by build_server

    def decode_request(self, request: Any, context_kwargs: Any = None) -> Any:
        return request

    def encode_response(self, output: Any, context_kwargs: Any = None) -> Any:
        return output

    async def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        uid = uuid.uuid4()
        event = asyncio.Event()
        self.response_buffer[uid] = ResponseBufferItem(event=event)
        self.request_queue.put_nowait((self.response_queue_id, uid, time.monotonic(), payload))
        await event.wait()
        response, status = self.response_buffer.pop(uid).response
        if status == LitAPIStatus.ERROR:
            raise HTTPException(504 if isinstance(response, HTTPException) and response.status_code == 504 else 500,
                                "the model failed on this input; see the server log")
        return response


async def read_input(request: Request) -> tuple[np.ndarray, str | None]:
    """The request's image as a framed ``uint8`` 28×28 array, and the model it asks for (or ``None``)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body of {int(length)} bytes is over the {MAX_BODY_BYTES} byte limit; "
                                 "send a smaller image")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    model = request.query_params.get("model")
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        model = form.get("model") or model
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart request without a 'file' part; send the image as file=@digit.png")
        return frame(await upload.read(), upload.filename or "upload"), model
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, 'JSON body must be an object: {"image": BASE64_PNG} or {"pixels": 28x28}')
        model = body.get("model") or model
        if "pixels" in body:
            return pixels_input(body["pixels"]), model
        if isinstance(body.get("image"), str):
            encoded = body["image"].split(",", 1)[1] if body["image"].startswith("data:") else body["image"]
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPException(400, "'image' is not valid base64; send a base64-encoded PNG") from None
            return frame(data, "image"), model
        raise HTTPException(400, 'JSON body needs "image" (base64 PNG) or "pixels" (28x28 numbers 0-255)')
    if content_type.startswith("image/"):
        return frame(await request.body(), "body"), model
    raise HTTPException(415, f"unsupported content type {content_type or 'none'!r}; send multipart/form-data "
                             "(file=...), application/json or image/png")


def frame(data: bytes, name: str) -> np.ndarray:
    try:
        return decode_image(data, "digit", name, MAX_IMAGE_PIXELS)[0].numpy()
    except ImageInputError as err:
        raise HTTPException(413 if "limit" in str(err) else 400, str(err)) from None


def pixels_input(pixels: Any) -> np.ndarray:
    try:
        array = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (28, 28) or not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise HTTPException(400, '"pixels" must be 28 rows of 28 numbers from 0 to 255 (white digit on black)')
    return np.rint(array).astype(np.uint8)


def build_server(models: list[ServedModel], max_batch_size: int = 64, batch_timeout: float = 0.005,
                 workers: int = 1, runner: str = "compile") -> ls.LitServer:
    """A LitServer for ``models`` (not started: call ``run``); the first model is the default; ``.pt2`` models run
    by ``runner`` (see :data:`litquant.artifacts.Runner`)."""
    names = [model.name for model in models]
    threads = max(1, (os.cpu_count() or 1) // workers)
    api = DigitAPI({model.name: str(model.path) for model in models}, threads=threads, runner=runner,
                   max_batch_size=max_batch_size, batch_timeout=batch_timeout, spec=DigitSpec())
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=workers, max_payload_size=MAX_BODY_BYTES,
                          timeout=30)
    spec = api.spec
    app = server.app
    metrics = Metrics()
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) != "/"]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        if request.url.path in ("/predict", "/compare"):
            metrics.record_request(request.url.path, response.status_code, (time.perf_counter() - start) * 1000)
        return response

    def choose(model: str | None) -> str:
        if model is None:
            return names[0]
        if model not in names:
            raise HTTPException(404, f"unknown model {model!r}; served: {', '.join(names)}")
        return model

    async def run(request: Request, everyone: bool) -> dict[str, Any]:
        start = time.perf_counter()
        pixels, model = await read_input(request)
        wanted = names if everyone else [choose(model)]
        answers = await spec.submit({"pixels": pixels, "models": wanted})
        latency_ms = (time.perf_counter() - start) * 1000.0
        results = {}
        for name in wanted:
            answer = answers[name]
            probabilities = answer["probabilities"]
            metrics.record_prediction(name, answer["batch_size"])
            results[name] = {"model": name, "label": int(np.argmax(probabilities)), "probabilities": probabilities,
                             "latency_ms": latency_ms, "inference_ms": answer["inference_ms"],
                             "batch_size": answer["batch_size"]}
        return {"results": results, "input": png_data_url(pixels)}

    @app.post("/predict", summary="Classify one digit image with one model")
    async def predict(request: Request) -> dict[str, Any]:
        """An image (multipart ``file``, raw ``image/*`` body, or JSON ``image``/``pixels``) and an optional
        ``model`` (default: the first served): label, probabilities, model and server-side latency (ms)."""
        outcome = await run(request, everyone=False)
        (result,) = outcome["results"].values()
        return {**result, "input": outcome["input"]}

    @app.post("/compare", summary="Classify one digit image with every served model")
    async def compare(request: Request) -> dict[str, Any]:
        """The same input as ``/predict``, through every served model: one result per model, side by side."""
        return await run(request, everyone=True)

    @app.get("/models", summary="The served models")
    async def list_models() -> dict[str, Any]:
        return {"default": names[0], "models": [{"name": m.name, **m.description} for m in models],
                "max_batch_size": max_batch_size, "batch_timeout": batch_timeout}

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
            raise HTTPException(404, f"no static file {name!r}")
        return Response((STATIC / name).read_text(encoding="utf-8"), media_type=files[name])

    return server
