r"""
Confusion matrix
================

After ``Trainer.test``: which classes the model mistakes for which, as a CSV table and a picture, and the
accuracy of each class, in the run's folder.

Example::

    from litquant.callbacks import ConfusionMatrix

    trainer = L.Trainer(logger=CSVLogger("logs"), callbacks=[ConfusionMatrix()])
    trainer.test(model, datamodule=dm)   # logs/lightning_logs/version_0/confusion_matrix.png, ...
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from litquant.files import atomic_path, write_text

__all__ = ["ConfusionMatrix", "per_class_accuracy", "plot_confusion_matrix", "write_confusion_matrix"]


def _csv(rows: Sequence[Sequence[Any]]) -> str:
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows(rows)
    return table.getvalue()


def per_class_accuracy(counts: torch.Tensor) -> list[float | None]:
    """Each class's accuracy (its correct predictions over its images) from a confusion matrix ``counts[true,
    predicted]``; ``None`` for a class with no image."""
    images = counts.sum(dim=1)
    return [None if total == 0 else int(counts[index, index]) / int(total) for index, total in enumerate(images)]


def plot_confusion_matrix(counts: torch.Tensor, classes: Sequence[str], target: str | os.PathLike) -> Path:
    """Draw the confusion matrix ``counts[true, predicted]`` with every count written in its cell, headless."""
    from matplotlib.figure import Figure

    size = len(classes)
    figure = Figure(figsize=(1.2 + 0.55 * size, 0.8 + 0.5 * size), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(counts.numpy(), cmap="Blues")
    total = int(counts.sum())
    accuracy = float(counts.diagonal().sum()) / max(total, 1)
    axes.set_title(f"Confusion matrix: {total:,} test images, accuracy {accuracy:.2%}")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    slanted = max(map(len, classes)) > 2  # names (Fashion-MNIST's), not digits
    axes.set_xticks(range(size), classes, rotation=45 if slanted else 0, ha="right" if slanted else "center")
    axes.set_yticks(range(size), classes)
    threshold = float(counts.max()) / 2
    for true in range(size):
        for predicted in range(size):
            value = int(counts[true, predicted])
            if value:
                axes.text(predicted, true, str(value), ha="center", va="center", fontsize=7,
                          color="white" if value > threshold else "black")
    figure.colorbar(image, ax=axes, shrink=0.8)
    target = Path(target)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target


def write_confusion_matrix(counts: torch.Tensor, classes: Sequence[str], folder: str | os.PathLike) -> dict[str, Path]:
    """``confusion_matrix.csv`` (rows: true class, columns: predicted), ``confusion_matrix.png`` and
    ``per_class_accuracy.csv`` (class, images, correct, accuracy) in ``folder``; their paths under the keys
    ``csv``, ``png`` and ``per_class``.

    Args:
        counts: ``counts[true, predicted]``, one row and column per class.
        classes: the class names, in the order of ``counts``.
        folder: where the files go (made if missing).
    """
    folder = Path(folder)
    counts = counts.to(torch.int64).cpu()
    matrix = [["true \\ predicted", *classes], *([name, *row] for name, row in zip(classes, counts.tolist(),
                                                                                     strict=True))]
    accuracy = per_class_accuracy(counts)
    per_class = [["class", "images", "correct", "accuracy"]]
    per_class += [[name, int(counts[index].sum()), int(counts[index, index]),
                   "" if accuracy[index] is None else f"{accuracy[index]:.4f}"] for index, name in enumerate(classes)]
    return {"csv": write_text(folder / "confusion_matrix.csv", _csv(matrix)),
            "png": plot_confusion_matrix(counts, classes, folder / "confusion_matrix.png"),
            "per_class": write_text(folder / "per_class_accuracy.csv", _csv(per_class))}


class ConfusionMatrix(Callback):
    r"""Count the test set's (true, predicted) pairs while ``Trainer.test`` runs and write
    :func:`write_confusion_matrix`'s files into the run's folder (``trainer.log_dir``) at its end.

    The LightningModule's ``test_step`` returns the predicted classes under ``"predictions"`` (as
    :class:`~litquant.model.MNISTClassifier`'s does); the class names come from the data module's ``spec``
    where it has one. Nothing is written without a logger, in a ``fast_dev_run``, or for a ``test_step``
    that returns no predictions. It runs on global rank zero, with the counts of every rank.

    Args:
        verbose: print one line with the written paths and the class the model gets wrong most.
    """

    def __init__(self, verbose: bool = True) -> None:
        self.verbose = verbose
        self.counts: torch.Tensor | None = None
        self.paths: dict[str, Path] = {}

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counts, self.paths = None, {}

    @override
    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if not isinstance(outputs, Mapping) or "predictions" not in outputs:
            return
        labels, predictions = batch[1].detach().cpu(), outputs["predictions"].detach().cpu()
        size = len(_class_names(trainer, pl_module))
        pairs = torch.bincount(labels * size + predictions, minlength=size * size)[: size * size]
        self.counts = pairs.view(size, size) + (0 if self.counts is None else self.counts)

    @override
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.counts is None or trainer.fast_dev_run or not trainer.loggers:
            return
        counts = trainer.strategy.reduce(self.counts.to(pl_module.device), reduce_op="sum").cpu()
        if not trainer.is_global_zero or trainer.log_dir is None:
            return
        classes = _class_names(trainer, pl_module)
        self.paths = write_confusion_matrix(counts, classes, trainer.log_dir)
        if self.verbose:
            accuracy = per_class_accuracy(counts)
            worst = min((value, index) for index, value in enumerate(accuracy) if value is not None)
            names = ", ".join(path.name for path in self.paths.values())
            print(f"Confusion matrix: {trainer.log_dir}/{{{names}}} (least accurate class: "
                  f"{classes[worst[1]]}, {worst[0]:.4f})")


def _class_names(trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
    """The data module's class names (``spec.classes``), else ``0``, ``1``, ... for the model's
    ``num_classes``."""
    spec = getattr(trainer.datamodule, "spec", None)
    if spec is not None and getattr(spec, "classes", None):
        return [str(name) for name in spec.classes]
    return [str(index) for index in range(int(pl_module.hparams.get("num_classes", 10)))]
