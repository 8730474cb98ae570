"""The served models themselves: loaded, compiled for the batch sizes they will meet, and run on one batch.

One piece of code for both places a model can run: the HTTP process (:mod:`litquant.serve.batcher`) and
LitServe worker processes (:mod:`litquant.serve.worker`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from litquant.artifacts.loading import load_model
from litquant.data import normalize

#: A loaded model: normalised ``[N, 1, 28, 28]`` floats to logits.
Model = Callable[[torch.Tensor], Any]


def warmup_sizes(max_batch_size: int) -> list[int]:
    """Batch sizes a compiled model sees for batches of up to ``max_batch_size`` (it pads to these)."""
    from litquant.artifacts.batching import COMPILED_BATCH_SIZES

    sizes = [size for size in COMPILED_BATCH_SIZES if size < max_batch_size]
    return sizes + [next((size for size in COMPILED_BATCH_SIZES if size >= max_batch_size),
                         COMPILED_BATCH_SIZES[-1])]


def load_models(paths: dict[str, str], runner: str, max_batch_size: int,
                threads: int | None = None) -> dict[str, Model]:
    """Every model of ``paths`` (name → file), loaded and run once at every batch size it will meet, through
    :func:`run_batch` as a request runs it (a compiled model's guards see the same tensors), so that compiling
    happens before the server says it is ready, not on a user's first request. ``threads``: the CPU threads of a
    model call (PyTorch's for this process, ONNX Runtime's per model; ``None``: their defaults)."""
    if threads:
        torch.set_num_threads(threads)
    models = {}
    sizes = warmup_sizes(max_batch_size)
    blank = np.zeros((28, 28), dtype=np.uint8)
    for name, path in paths.items():
        print(f"litquant serve: loading {name} ({path})", file=sys.stderr, flush=True)
        model = load_model(path, runner, threads, sizes)
        for size in sizes:
            run_batch({name: model}, [blank] * size, [[name]] * size)
        models[name] = model
    return models


def run_batch(models: dict[str, Model], images: Sequence[np.ndarray],
              wanted: Sequence[Sequence[str]]) -> list[dict[str, dict[str, Any]]]:
    """``uint8`` 28×28 ``images``, each through the models named in its ``wanted``: one batch per model, with
    the rows that ask for it. Per image: model name → probabilities, the model call's time and batch size."""
    with torch.inference_mode():
        batch = normalize(torch.from_numpy(np.stack(images)).unsqueeze(1))
    results: list[dict[str, dict[str, Any]]] = [{} for _ in images]
    for name, model in models.items():
        rows = [index for index, names in enumerate(wanted) if name in names]
        if not rows:
            continue
        start = time.perf_counter()
        with torch.inference_mode():
            probabilities = torch.as_tensor(model(batch if len(rows) == len(images) else batch[rows]))
            probabilities = probabilities.float().softmax(dim=1).tolist()
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        for row, probs in zip(rows, probabilities, strict=True):
            results[row][name] = {"probabilities": probs, "inference_ms": elapsed_ms, "batch_size": len(rows)}
    return results
