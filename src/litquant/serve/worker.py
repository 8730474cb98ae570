"""LitServe worker processes (``litquant serve --workers N``): each loads every served model and runs dynamic
batches from LitServe's queue, for models that are worth a process of their own (see ``docs/serve.md``)."""

from __future__ import annotations

import signal
import warnings
from typing import Any

import litserve as ls
import numpy as np

from litquant.serve.models import load_models, run_batch


def _exit_quietly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


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
        from litquant.artifacts.errors import Int8RangeWarning

        # Ctrl-C reaches every process of the command; the main process then stops the workers (SIGTERM), so a
        # worker interrupted in LitServe's queue would only print its traceback. SIGTERM ends the worker as a
        # returning process does, multiprocessing's clean-up included (a lock tqdm made here would otherwise
        # be reported leaked at shutdown).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _exit_quietly)
        quiet_library_logs()  # a worker is a process of its own: as quiet as the command that started it
        ignore_library_internal_warnings()
        warnings.filterwarnings("ignore", category=Int8RangeWarning)  # the command warned once, before the workers
        self.models = load_models(self.model_paths, self.runner, self.max_batch_size, self.threads)

    def decode_request(self, request: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
        return np.asarray(request["pixels"], dtype=np.uint8).reshape(28, 28), request["models"]

    def batch(self, inputs: list) -> list:
        return inputs

    def predict(self, x: Any) -> Any:
        items = x if self.max_batch_size > 1 else [x]
        results = run_batch(self.models, [image for image, _ in items], [wanted for _, wanted in items])
        return results if self.max_batch_size > 1 else results[0]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output
