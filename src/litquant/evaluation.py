"""Measure a model: top-1 accuracy with a plain PyTorch loop (:func:`evaluate`) or through a ``Trainer``
(:class:`ArtifactModule`), and the latency of one call (:func:`measure_latency`).

A model is any callable on normalised float images ``[N, 1, 28, 28]`` returning logits: a loaded artifact
(:func:`litquant.artifacts.loading.load_artifact`), a checkpoint's network, a compiled runner.

Example::

    from litquant.artifacts.loading import load_artifact
    from litquant.data import MNISTDataModule
    from litquant.evaluation import evaluate, measure_latency

    model = load_artifact("out/ptq.pt2")       # compiles with inductor freezing on first use
    print(evaluate(model, MNISTDataModule()))  # test accuracy, plain PyTorch loop
    print(measure_latency(model, batch_size=256, threads=2), "ms")
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from litquant.artifacts.loading import LoadedModel, load_artifact
from litquant.data.batches import labelled_batches

__all__ = ["ArtifactModule", "evaluate", "measure_latency", "time_calls"]


def evaluate(model: Callable[..., Any], datamodule: Any, split: str = "test", batch_size: int = 256,
             limit_batches: int | None = None, *, inputs: Callable[[Any], tuple[tuple, dict]] | None = None,
             logits: Callable[[Any], torch.Tensor] | None = None) -> float:
    """Top-1 accuracy of ``model`` on a split, with a plain PyTorch loop (no Trainer).

    Args:
        model: called on a batch's inputs.
        datamodule: the data (:func:`~litquant.data.batches.labelled_batches`: MNIST's normalised batches of
            ``batch_size``, or any data module's own ``(inputs, target)`` batches).
        split: ``train``, ``val`` or ``test``.
        batch_size: samples per batch (MNIST's data module only).
        limit_batches: at most this many batches (``None``: the whole split).
        inputs: a batch's inputs as the model's ``(args, kwargs)`` (default: the inputs are the one argument).
        logits: the class logits in the model's output (default: the output is the logits).

    Raises:
        ValueError: the split is empty.
    """
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()  # exported graphs have no eval(): their mode is fixed at export
    correct = total = 0
    with torch.inference_mode():
        for batch, labels in labelled_batches(datamodule, split, batch_size, limit_batches):
            args, kwargs = ((batch,), {}) if inputs is None else inputs(batch)
            output = model(*args, **kwargs)
            predicted = (output if logits is None else logits(output)).argmax(dim=1)
            correct += (predicted == labels).sum().item()
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


def time_calls(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, calls: int,
               min_time_s: float = 0.0) -> list[float]:
    """Wall time (ms) of each of ``calls`` calls ``model(x)``, more until ``min_time_s`` seconds have passed: the
    one timing loop of :func:`measure_latency` and :func:`litquant.apps.bench.measure`."""
    timings = []
    start = time.perf_counter()
    while len(timings) < calls or time.perf_counter() - start < min_time_s:
        begin = time.perf_counter()
        model(x)
        timings.append((time.perf_counter() - begin) * 1000.0)
    return timings


def measure_latency(model: Callable[[torch.Tensor], torch.Tensor], batch_size: int, threads: int | None = None,
                    repeats: int = 20, warmup: int = 3, min_time_s: float = 0.0) -> float:
    """Median wall time (ms) of one call on a batch of ``batch_size``, after ``warmup`` calls.

    ``threads`` sets PyTorch's thread count during the measurement. An ONNX Runtime model keeps the thread
    count it was loaded with (``load_artifact(threads=...)``).
    """
    x = torch.randn(batch_size, 1, 28, 28)
    with _torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        return statistics.median(time_calls(model, x, repeats, min_time_s))


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
