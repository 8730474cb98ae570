"""int8 models from a trained checkpoint: PT2E post-training quantization, PT2E QAT in a plain loop, QAT in
a Lightning ``Trainer`` (:class:`~litquant.callbacks.QuantizationAwareTraining`), and ONNX Runtime.

Each method writes one self-contained artifact (``<out>/<method>.pt2`` or ``<out>/onnxruntime.int8.onnx``)
that describes itself (:mod:`litquant.artifacts`: method, library versions, input spec with the normalisation,
the checkpoint and the SHA-256 of its bytes, the accuracy measured on a few validation batches), and a readable
JSON copy of that description beside it. An artifact always comes from the checkpoint named: the fp32 ONNX model
cached in ``<out>`` is reused only when the checkpoint hash inside it is that checkpoint's, each run quantizes
its own private copy, and a checkpoint that changes while it is being quantized is refused.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization import QuantizeConfig, export_fp32, quantize

    dm = MNISTDataModule(train_size=2000)
    export_fp32("fp32.ckpt", "out", datamodule=dm)            # out/fp32.pt2, out/onnxruntime.fp32.onnx
    artifact = quantize("ptq", "fp32.ckpt", dm, "out", config=QuantizeConfig(calibration_batches=8))
                                                               # out/ptq.pt2 (+ out/ptq.json)

The methods are registered objects (:mod:`litquant.quantization.methods`); ``METHODS`` maps their names to
them, in the report's order. Adding one is one module and one :func:`register_method` call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# isort: off
# the built-in methods register themselves, in the report's order
from litquant.quantization import ptq  # noqa: F401
from litquant.quantization import qat  # noqa: F401
from litquant.quantization import lightning_qat  # noqa: F401
from litquant.quantization import onnx_runtime  # noqa: F401
# isort: on
from litquant.quantization.calibration import CalibrationConfig
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.export import export_fp32
from litquant.quantization.methods import (
    BASELINES,
    METHODS,
    QuantizationMethod,
    get_entry,
    get_method,
    register_method,
    run_method,
)
from litquant.quantization.model_io import ModelSpec

__all__ = ["BASELINES", "METHODS", "CalibrationConfig", "ModelSpec", "QuantizationMethod", "QuantizeConfig",
           "artifact_name", "export_fp32", "get_entry", "get_method", "quantize", "register_method"]

def artifact_name(method: str) -> str:
    """The file name the artifact of a method or fp32 baseline (:data:`BASELINES`) gets in the output folder."""
    return get_entry(method).file_name


def quantize(method: str, checkpoint: str | os.PathLike, datamodule: Any, out_dir: str | os.PathLike, *,
             config: QuantizeConfig | None = None, progress: bool = True, model: ModelSpec | None = None) -> Path:
    """Quantize the checkpoint's model to int8 with ``method`` and write the artifact (its description
    embedded, a readable JSON copy beside it).

    Args:
        method: the name of a registered method (one of :data:`METHODS`).
        checkpoint: a Lightning checkpoint of ``model.module_class`` (default
            :class:`~litquant.model.MNISTClassifier`).
        datamodule: the data (calibration and fine-tuning use its training split; the description's accuracy
            its validation split): :class:`~litquant.data.MNISTDataModule`, or any ``LightningDataModule`` whose
            batches are ``(inputs, target)`` (:mod:`litquant.data.batches`).
        out_dir: folder of the artifact.
        config: the options (calibration batches, QAT fine-tuning, observer...); default :class:`QuantizeConfig`.
        progress: progress output on stderr.
        model: the LightningModule class the checkpoint is loaded into and its class-logits output (default
            ``MNISTClassifier``); its ``example_input_array`` gives the inputs the artifact takes.

    Returns:
        The artifact's path.
    """
    return run_method(method, checkpoint, datamodule, out_dir, config, progress, model)
