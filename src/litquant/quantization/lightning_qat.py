"""Quantization-aware fine-tuning inside a Lightning ``Trainer``, with :class:`QuantizationAwareTraining`.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.config import QuantizeConfig
    from litquant.quantization.lightning_qat import quantize_lightning_qat

    program = quantize_lightning_qat("fp32.ckpt", MNISTDataModule(train_size=2000),
                                     QuantizeConfig(qat_epochs=1, qat_max_steps=50))
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import lightning.pytorch as L
from torch.export import ExportedProgram

from litquant.quantization.callback import QuantizationAwareTraining
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.methods import QuantizeJob, register_method
from litquant.quantization.model_io import ModelSpec
from litquant.quantization.qat import QAT

__all__ = ["LightningQAT", "quantize_lightning_qat"]


def quantize_lightning_qat(checkpoint: str | os.PathLike, datamodule: Any, config: QuantizeConfig | None = None, *,
                           model: ModelSpec | None = None, progress: bool = True,
                           accelerator: str = "cpu") -> ExportedProgram:
    """Fine-tune the checkpoint's model with the QAT callback in a real ``Trainer`` (the module's own
    ``training_step`` and optimiser), and return the int8 program the callback converts at the end of ``fit``.

    Args:
        checkpoint: a Lightning checkpoint of ``model.module_class``.
        datamodule: the data whose training split fine-tunes.
        config: the options (default :class:`QuantizeConfig`): ``qat_epochs`` epochs of at most ``qat_max_steps``
            steps in all, at a peak learning rate of ``qat_lr`` (set as the module's hyper-parameter ``lr``, when it
            has one); its calibration, whole, is the callback's.
        model: the LightningModule class and its class-logits output (default: ``MNISTClassifier``).
        progress: Lightning's progress bar.
        accelerator: the ``Trainer``'s accelerator.

    Raises:
        ValueError: ``config.fp32_layers`` names no conv/linear layer of the model.
    """
    config = config or QuantizeConfig()
    model = model or ModelSpec()
    module = model.load(checkpoint)
    if "lr" in module.hparams:
        module.hparams.lr = config.qat_lr  # fine-tuning: a small peak learning rate for the model's own schedule
    calibration = config.calibration
    calibration.check_layers(model.net_of(module))
    # the callback captures the LightningModule, in which MNIST's network is the module ``model``
    in_module = dataclasses.replace(calibration,
                                    fp32_layers=tuple(f"{model.prefix}{name}" for name in calibration.fp32_layers))
    callback = QuantizationAwareTraining(calibration=in_module, logits_output=model.logits_output)
    max_steps = config.qat_max_steps
    trainer = L.Trainer(
        max_epochs=config.qat_epochs, max_steps=max_steps if max_steps is not None else -1, accelerator=accelerator,
        devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=progress, num_sanity_val_steps=0, callbacks=[callback],
    )
    trainer.fit(module, datamodule=datamodule)
    return callback.export()


class LightningQAT(QAT):
    """``lightning-qat``: :func:`quantize_lightning_qat` (the checkpoint fine-tuned in a ``Trainer``)."""

    name = "lightning-qat"
    label = "PyTorch Lightning QAT callback (PT2E)"

    def fine_tune(self, job: QuantizeJob) -> ExportedProgram:
        return quantize_lightning_qat(job.checkpoint, job.datamodule, job.config, model=job.model,
                                      progress=job.progress)


register_method(LightningQAT())
