"""``litquant serve --workers N``: the models in N LitServe worker processes, behind litquant's routes.

LitServe's default ``POST /predict`` takes one JSON body for one ``LitAPI``; litquant needs two endpoints on
one set of workers (``/predict`` and ``/compare``), uploads and input checks, so a
:class:`~litserve.specs.base.LitSpec` (LitServe's extension point for custom endpoints) submits to the workers'
queue, and the routes of :func:`litquant.serve.app.add_routes` are added to its FastAPI app.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import litserve as ls
import numpy as np
from litserve.specs.base import LitSpec
from litserve.utils import LitAPIStatus, ResponseBufferItem

from litquant.serve.app import ServedModel, add_routes
from litquant.serve.batcher import ModelFailed
from litquant.serve.inputs import MAX_BODY_BYTES
from litquant.serve.worker import DigitAPI

#: The shortest batch wait given to LitServe: at 0 its batching loop polls the queue without a pause, a whole
#: core busy while idle; a wait > 0 is paid in full by every batch, at concurrency 1 too.
LITSERVE_MIN_BATCH_TIMEOUT = 0.001


class DigitSpec(LitSpec):
    """Submits checked 28×28 images to the workers and waits for their answers (the ``LitSpec`` hooks pass
    requests and answers through: :class:`~litquant.serve.worker.DigitAPI` does the work)."""

    def __init__(self) -> None:
        super().__init__()
        self.api_path = "/predict"  # names the workers' queue; the routes are added by add_routes

    def decode_request(self, request: Any, context_kwargs: Any = None) -> Any:
        return request

    def encode_response(self, output: Any, context_kwargs: Any = None) -> Any:
        return output

    async def submit(self, pixels: np.ndarray, models: list[str]) -> dict[str, Any]:
        uid = uuid.uuid4()
        event = asyncio.Event()
        self.response_buffer[uid] = ResponseBufferItem(event=event)
        self.request_queue.put_nowait((self.response_queue_id, uid, time.monotonic(),
                                       {"pixels": pixels, "models": models}))
        await event.wait()
        response, status = self.response_buffer.pop(uid).response
        if status == LitAPIStatus.ERROR:
            raise ModelFailed(str(response))
        return response


def build_server(models: list[ServedModel], max_batch_size: int = 64, batch_timeout: float = 0.0,
                 workers: int = 1, runner: str = "compile", fast_queue: bool = True,
                 threads: int | None = None) -> ls.LitServer:
    """A LitServer for ``models`` with ``workers`` inference processes (not started: call ``run``); the first
    model is the default; ``.pt2`` models run by ``runner`` (see :data:`litquant.artifacts.loading.Runner`) with
    ``threads`` CPU threads per worker (default: the cores split between the workers); with batching,
    ``batch_timeout`` is at least :data:`LITSERVE_MIN_BATCH_TIMEOUT`."""
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    if max_batch_size > 1:
        batch_timeout = max(batch_timeout, LITSERVE_MIN_BATCH_TIMEOUT)
    api = DigitAPI({model.name: str(model.path) for model in models}, threads=threads, runner=runner,
                   max_batch_size=max_batch_size, batch_timeout=batch_timeout, spec=DigitSpec())
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=workers, max_payload_size=MAX_BODY_BYTES,
                          timeout=30, fast_queue=fast_queue)
    add_routes(server.app, models, api.spec.submit, {"workers": workers, "max_batch_size": max_batch_size,
                                                     "batch_timeout": batch_timeout})
    return server
