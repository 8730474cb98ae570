"""Quantization-aware fine-tuning inside a Lightning ``Trainer``, with :class:`QuantizationAwareTraining`.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.lightning_qat import quantize_lightning_qat

    program = quantize_lightning_qat("fp32.ckpt", MNISTDataModule(train_size=2000), epochs=1, max_steps=50)
"""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as L
from torch.export import ExportedProgram

from litquant.checkpoints import load_classifier
from litquant.quantization.calibration import CalibrationConfig
from litquant.quantization.callback import QuantizationAwareTraining
from litquant.quantization.methods import QuantizeJob, register_method
from litquant.quantization.qat import QAT

__all__ = ["LightningQAT", "quantize_lightning_qat"]


def quantize_lightning_qat(checkpoint: str | os.PathLike, datamodule: Any, *, epochs: int = 1,
                           max_steps: int | None = None, lr: float = 1e-4, progress: bool = True,
                           accelerator: str = "cpu", calibration: CalibrationConfig | None = None) -> ExportedProgram:
    """Fine-tune the checkpoint's model with the QAT callback for ``epochs`` (at most ``max_steps`` steps)
    in a real ``Trainer``, and return the int8 program the callback converts at the end of ``fit``.
    ``calibration`` sets the callback's ``observer_type``, ``percentile``, ``per_channel`` and ``reduce_range``."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    model = load_classifier(checkpoint)
    model.hparams.lr = lr  # fine-tuning: a small peak learning rate for the model's own schedule
    calibration = (calibration or CalibrationConfig()).resolved("lightning-qat")
    callback = QuantizationAwareTraining(observer_type=calibration.observer, percentile=calibration.percentile,
                                         per_channel=calibration.per_channel, reduce_range=calibration.reduce_range)
    trainer = L.Trainer(
        max_epochs=epochs, max_steps=max_steps if max_steps is not None else -1, accelerator=accelerator,
        devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=progress, num_sanity_val_steps=0, callbacks=[callback],
    )
    trainer.fit(model, datamodule=datamodule)
    return callback.export()


class LightningQAT(QAT):
    """``lightning-qat``: :func:`quantize_lightning_qat` (the checkpoint fine-tuned in a ``Trainer``)."""

    name = "lightning-qat"
    label = "PyTorch Lightning QAT callback (PT2E)"

    def fine_tune(self, job: QuantizeJob) -> ExportedProgram:
        config = job.config
        return quantize_lightning_qat(job.checkpoint, job.datamodule, epochs=config.qat_epochs,
                                      max_steps=config.qat_max_steps, lr=config.qat_lr, calibration=job.calibration,
                                      progress=job.progress)


register_method(LightningQAT())
