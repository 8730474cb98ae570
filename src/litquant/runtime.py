"""Run the saved models: load an artifact, evaluate it, time it, and check it in a fresh process.

An artifact is one file, ``.pt2`` (``torch.export``) or ``.onnx`` (ONNX Runtime), that describes itself; its
format, saving and safe loading live in :mod:`litquant.artifacts` (re-exported here). Models take the normalised
float input ``[N, 1, 28, 28]`` and return logits ``[N, 10]``.

**Loading never executes code from the file**: the bytes are read once, a ``.pt2`` archive is checked entry by
entry (no duplicate or case-colliding names, nothing outside the plain-tensor layout, no pickled payloads, capped
inflated sizes) and only a clean copy rebuilt in memory from the checked entries reaches ``torch.export.load``;
see :mod:`litquant.artifacts`.

Example::

    from litquant.data import MNISTDataModule
    from litquant.runtime import evaluate, load_artifact, measure_latency

    model = load_artifact("out/ptq.pt2")       # compiles with inductor freezing on first use
    print(evaluate(model, MNISTDataModule()))  # test accuracy, plain PyTorch loop
    print(measure_latency(model, batch_size=256, threads=2), "ms")

Run as a module, it loads an artifact in a fresh process and prints one JSON line::

    python -m litquant.runtime out/ptq.pt2 --data_dir ~/data --batches 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from litquant.artifacts import (
    ArtifactError,
    LoadedModel,
    UnsafeArtifactError,
    load_artifact,
    read_description,
)

__all__ = [
    "ArtifactError",
    "ArtifactModule",
    "LoadedModel",
    "UnsafeArtifactError",
    "check_all_in_fresh_process",
    "check_in_fresh_process",
    "evaluate",
    "load_artifact",
    "measure_latency",
    "normalized_batches",
    "read_description",
]


def normalized_batches(datamodule: Any, split: str = "test", batch_size: int | None = None,
                       limit: int | None = None, shuffle: bool = False, seed: int | None = None,
                       device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``datamodule.normalized_batches(...)``: see :meth:`litquant.data.MNISTDataModule.normalized_batches`."""
    return datamodule.normalized_batches(split, batch_size=batch_size, limit=limit, shuffle=shuffle, seed=seed,
                                         device=device)


# -- using ------------------------------------------------------------------------------------------
def evaluate(model: Callable[[torch.Tensor], torch.Tensor], datamodule: Any, split: str = "test",
             batch_size: int = 256, limit_batches: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on a split, with a plain PyTorch loop (no Trainer)."""
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()  # exported graphs have no eval(): their mode is fixed at export
    correct = total = 0
    with torch.inference_mode():
        for images, labels in normalized_batches(datamodule, split, batch_size, limit_batches):
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            total += len(labels)
    if total == 0:
        raise ValueError(f"the {split!r} split is empty: nothing to evaluate")
    return correct / total


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: Callable[[torch.Tensor], torch.Tensor], batch_size: int, threads: int | None = None,
                    repeats: int = 20, warmup: int = 3, min_time_s: float = 0.0) -> float:
    """Median wall time (ms) of one call on a batch of ``batch_size``, after ``warmup`` calls.

    ``threads`` sets PyTorch's thread count during the measurement. An ONNX Runtime model keeps the thread
    count it was loaded with (``load_artifact(threads=...)``).
    """
    x = torch.randn(batch_size, 1, 28, 28)
    timings = []
    with _torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        start = time.perf_counter()
        while len(timings) < repeats or time.perf_counter() - start < min_time_s:
            begin = time.perf_counter()
            model(x)
            timings.append(time.perf_counter() - begin)
    return statistics.median(timings) * 1000.0


class ArtifactModule(L.LightningModule):
    """A loaded artifact as a LightningModule: ``Trainer.test`` logs ``test_loss``/``test_acc``,
    ``Trainer.validate`` ``val_loss``/``val_acc``, and ``Trainer.predict`` returns class probabilities.

    Example::

        trainer = L.Trainer(logger=False)
        trainer.test(ArtifactModule("out/ptq.pt2"), datamodule=MNISTDataModule())
    """

    def __init__(self, artifact: str | os.PathLike | LoadedModel, compile: bool = True) -> None:
        super().__init__()
        self.artifact = artifact if isinstance(artifact, LoadedModel) else load_artifact(artifact, compile=compile)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.artifact(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        self.log(f"{split}_loss", loss, on_epoch=True, batch_size=len(labels))
        self.log(f"{split}_acc", accuracy, on_epoch=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)


# -- the fresh-process check ------------------------------------------------------------------------
def check_in_fresh_process(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                           dataset: str = "mnist", batches: int = 2, batch_size: int = 256, compile: bool = False,
                           timeout: float = 600.0) -> dict[str, Any]:
    """Load ``path`` in a new Python process (``python -m litquant.runtime``) and evaluate ``batches`` test
    batches there. Returns ``{"ok": bool, "accuracy": float | None, "samples": int, "error": str | None}``."""
    return check_all_in_fresh_process([path], data_dir, dataset=dataset, batches=batches, batch_size=batch_size,
                                      compile=compile, timeout=timeout)[0]


def check_all_in_fresh_process(paths: Sequence[str | os.PathLike], data_dir: str | os.PathLike | None = None, *,
                               dataset: str = "mnist", batches: int = 2, batch_size: int = 256,
                               compile: bool = False, timeout: float = 600.0) -> list[dict[str, Any]]:
    """:func:`check_in_fresh_process` for several artifacts in one new process (each loaded from its file
    alone; one failing does not stop the others). One result per path, in order."""
    command = [sys.executable, "-m", "litquant.runtime", *map(str, paths), "--dataset", dataset,
               "--batches", str(batches), "--batch_size", str(batch_size)]
    if data_dir is not None:
        command += ["--data_dir", str(data_dir)]
    if compile:
        command.append("--compile")

    def failed(error: str) -> list[dict[str, Any]]:
        return [{"artifact": str(p), "ok": False, "accuracy": None, "samples": 0, "error": error} for p in paths]

    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return failed(f"timed out after {timeout:.0f} s")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if len(results) != len(paths):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return failed(f"exit {done.returncode}: {tail}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Load each artifact, evaluate it on a few test batches, print one JSON line per artifact."""
    parser = argparse.ArgumentParser(prog="python -m litquant.runtime",
                                     description="Load artifacts and print their accuracy on a few test batches.")
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    from litquant.data import MNISTDataModule

    datamodule = MNISTDataModule(data_dir=args.data_dir, dataset=args.dataset,
                                 test_size=args.batches * args.batch_size)
    samples = len(datamodule.split("test"))
    failures = 0
    for artifact in args.artifacts:
        try:
            model = load_artifact(artifact, compile=args.compile)
            accuracy = evaluate(model, datamodule, "test", args.batch_size, args.batches)
            result = {"artifact": artifact, "ok": True, "accuracy": accuracy, "samples": samples, "error": None}
        except Exception as err:  # noqa: BLE001 - reported per artifact, the others still run
            failures += 1
            result = {"artifact": artifact, "ok": False, "accuracy": None, "samples": 0,
                      "error": f"{type(err).__name__}: {err}".splitlines()[0]}
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
