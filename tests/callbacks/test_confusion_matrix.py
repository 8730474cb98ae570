"""``ConfusionMatrix``: a test run's (true, predicted) counts as CSV and PNG, and each class's accuracy, in the
run's folder; nothing from a ``fast_dev_run``."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from litquant.callbacks import ConfusionMatrix
from litquant.callbacks.confusion_matrix import per_class_accuracy, write_confusion_matrix
from litquant.model import MNISTClassifier


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_the_files_hold_the_counts_and_each_class_accuracy(tmp_path: Path) -> None:
    counts = torch.tensor([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    paths = write_confusion_matrix(counts, ["cat", "dog", "eel"], tmp_path)
    assert _rows(paths["csv"]) == [["true \\ predicted", "cat", "dog", "eel"], ["cat", "8", "2", "0"],
                                   ["dog", "1", "9", "0"], ["eel", "0", "0", "0"]]
    assert _rows(paths["per_class"]) == [["class", "images", "correct", "accuracy"], ["cat", "10", "8", "0.8000"],
                                         ["dog", "10", "9", "0.9000"], ["eel", "0", "0", ""]]
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and paths["png"].stat().st_size > 5_000
    assert per_class_accuracy(counts) == [0.8, 0.9, None]


def _trainer(tmp_path: Path, **options) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=CSVLogger(tmp_path, name="run"), callbacks=[ConfusionMatrix()],
                     enable_progress_bar=False, enable_model_summary=False, **options)


def test_a_test_run_writes_them_into_its_run_folder(tmp_path: Path, make_datamodule, capsys) -> None:
    datamodule = make_datamodule(test_size=256)
    trainer = _trainer(tmp_path)
    accuracy = trainer.test(MNISTClassifier(), datamodule=datamodule, verbose=False)[0]["test_acc"]
    folder = tmp_path / "run" / "version_0"
    rows = _rows(folder / "confusion_matrix.csv")
    assert rows[0] == ["true \\ predicted", *[str(d) for d in range(10)]]
    counts = torch.tensor([[int(cell) for cell in row[1:]] for row in rows[1:]])
    assert counts.sum() == 256 and counts.sum(dim=1).tolist() == torch.bincount(
        datamodule.split("test").labels, minlength=10).tolist()
    assert float(counts.diagonal().sum()) / 256 == pytest.approx(accuracy, abs=1e-6)
    assert (folder / "confusion_matrix.png").is_file() and (folder / "per_class_accuracy.csv").is_file()
    printed = capsys.readouterr().out
    names = "confusion_matrix.csv, confusion_matrix.png, per_class_accuracy.csv"
    assert f"Confusion matrix: {folder}/{{{names}}}" in printed
    assert "least accurate class: " in printed


def test_a_fast_dev_run_writes_none(tmp_path: Path, make_datamodule) -> None:
    _trainer(tmp_path, fast_dev_run=True).test(MNISTClassifier(), datamodule=make_datamodule(), verbose=False)
    assert not list(tmp_path.rglob("confusion_matrix.*"))
