"""What the quantization, evaluation, callback and report tests share: one small fp32 model trained with a real
Trainer, and the artifacts of every method made from it. ``conftest.py`` builds each once per test session
(fixtures ``tiny_checkpoint`` and ``tiny_artifacts``)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import torch

from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier
from litquant.quantization import METHODS, QuantizeConfig, export_fp32, quantize


def small_datamodule(mnist_dir: Path, **overrides) -> MNISTDataModule:
    """1,024 training, 256 validation and 256 test images of real MNIST, batch 64, no augmentation."""
    options = dict(data_dir=str(mnist_dir), train_size=1024, val_size=256, test_size=256, batch_size=64,
                   augment_shift=0, download=False)
    options.update(overrides)
    return MNISTDataModule(**options)


def train_tiny_checkpoint(root: Path, mnist_dir: Path) -> Path:
    """A checkpoint of ``MNISTClassifier`` after one epoch on 1,024 images (about 85% accurate)."""
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=1, default_root_dir=root / "fp32", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(MNISTClassifier(), datamodule=small_datamodule(mnist_dir))
    return Path(trainer.checkpoint_callback.best_model_path)


def make_artifacts(checkpoint: Path, out: Path, mnist_dir: Path) -> dict[str, Path]:
    """``{"fp32": fp32.pt2, "onnxruntime-fp32": ..., method: artifact}`` for every method, in ``out``."""
    datamodule = small_datamodule(mnist_dir)
    made = {"fp32": export_fp32(checkpoint, out, datamodule=datamodule, progress=False),
            "onnxruntime-fp32": out / "onnxruntime.fp32.onnx"}
    for method in METHODS:
        made[method] = quantize(method, checkpoint, datamodule, out,
                                config=QuantizeConfig(calibration_batches=4, qat_max_steps=4), progress=False)
    return made
