"""The LitServe worker: loads every served model, compiles it at start-up, and runs dynamic batches."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import litserve as ls
import numpy as np
import torch

from litquant.data import normalize


def load_model(path: str, runner: str = "compile", batch_sizes: list[int] | None = None):
    """A callable on normalised ``[N, 1, 28, 28]`` floats returning logits: a ``.ckpt`` through the safe
    checkpoint loader, a ``.pt2``/``.onnx`` through :func:`litquant.artifacts.load_artifact` (a ``.pt2`` run by
    ``runner``, compiled for ``batch_sizes``)."""
    if path.endswith(".ckpt"):
        from litquant.checkpoints import load_classifier

        return load_classifier(path).eval()
    from litquant.artifacts import COMPILED_BATCH_SIZES, load_artifact

    return load_artifact(path, runner=runner, progress=runner != "eager",
                         batch_sizes=batch_sizes or COMPILED_BATCH_SIZES)


def warmup_sizes(max_batch_size: int) -> list[int]:
    """Batch sizes a compiled model sees for batches of up to ``max_batch_size`` (it pads to these)."""
    from litquant.artifacts import COMPILED_BATCH_SIZES

    sizes = [size for size in COMPILED_BATCH_SIZES if size < max_batch_size]
    return sizes + [next((size for size in COMPILED_BATCH_SIZES if size >= max_batch_size),
                         COMPILED_BATCH_SIZES[-1])]


class DigitAPI(ls.LitAPI):
    """Each request is a ``uint8`` 28×28 image (already decoded and checked by the HTTP process) and the
    names of the models to run it through; a batch runs once through each model its requests ask for."""

    def __init__(self, models: dict[str, str], threads: int | None = None, runner: str = "compile",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_paths = models
        self.threads = threads
        self.runner = runner

    def setup(self, device: str) -> None:
        from litquant import ignore_library_internal_warnings, quiet_library_logs
        from litquant.artifacts import Int8RangeWarning

        quiet_library_logs()  # a worker is a process of its own: as quiet as the command that started it
        ignore_library_internal_warnings()
        warnings.filterwarnings("ignore", category=Int8RangeWarning)  # the command warned once, before the workers
        if self.threads:
            torch.set_num_threads(self.threads)
        self.models = {}
        for name, path in self.model_paths.items():
            print(f"litquant serve: loading {name} ({path})", file=sys.stderr, flush=True)
            sizes = warmup_sizes(self.max_batch_size)
            model = load_model(path, self.runner, sizes)
            with torch.inference_mode():
                for size in sizes:  # compile every batch size before saying ready
                    model(torch.zeros(size, 1, 28, 28))
            self.models[name] = model

    def decode_request(self, request: dict[str, Any]) -> tuple[torch.Tensor, list[str]]:
        return torch.from_numpy(np.asarray(request["pixels"], dtype=np.uint8)).view(1, 28, 28), request["models"]

    def batch(self, inputs: list) -> list:
        return inputs

    def predict(self, x: Any) -> Any:
        items = x if self.max_batch_size > 1 else [x]
        images = normalize(torch.stack([image for image, _ in items]))
        results: list[dict[str, Any]] = [{} for _ in items]
        for name, model in self.models.items():
            rows = [index for index, (_, wanted) in enumerate(items) if name in wanted]
            if not rows:
                continue
            start = time.perf_counter()
            with torch.inference_mode():
                probabilities = torch.as_tensor(model(images[rows])).float().softmax(dim=1)
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            for row, probs in zip(rows, probabilities.tolist(), strict=True):
                results[row][name] = {"probabilities": probs, "inference_ms": elapsed_ms, "batch_size": len(rows)}
        return results if self.max_batch_size > 1 else results[0]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output
