"""Dynamic batching in the HTTP process: the models run in one thread of their own, fed from the event loop.

A request waits only for the model, never for a timer: while one batch runs, the requests that arrive queue up,
and the next batch takes every one of them (up to ``max_batch_size``). At concurrency 1 a request runs at once,
alone; under load the batches grow by themselves. ``batch_timeout`` > 0 adds a wait for more requests, for
models whose batch of N costs much less than N batches of one; the default 0 never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from litquant.serve.models import Model, run_batch


class ModelFailed(RuntimeError):
    """The model raised on a batch; every request of that batch gets this."""


class Batcher:
    """Submits 28×28 images to ``models`` from the event loop and answers each with its models' results."""

    def __init__(self, models: dict[str, Model], max_batch_size: int = 64, batch_timeout: float = 0.0) -> None:
        self.models = models
        self.max_batch_size = max_batch_size
        self.batch_timeout = batch_timeout
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="litquant-model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._serve(), name="litquant-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True, cancel_futures=True)

    async def submit(self, pixels: np.ndarray, models: list[str]) -> dict[str, dict[str, Any]]:
        """``pixels`` through each of ``models``: name → probabilities, inference time, batch size."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((pixels, models, future))
        return await future

    async def _next_batch(self) -> list[tuple[np.ndarray, list[str], asyncio.Future]]:
        queue = self._queue
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.batch_timeout
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [item for item in await self._next_batch() if not item[2].done()]  # not cancelled meanwhile
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._thread, run_batch, self.models,
                                                     [pixels for pixels, _, _ in batch],
                                                     [models for _, models, _ in batch])
            except Exception as err:  # the model failed: every request of the batch says so, the server goes on
                failure = ModelFailed(f"{type(err).__name__}: {err}")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
