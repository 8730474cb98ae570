"""int8 models from a trained checkpoint: PT2E post-training quantization, PT2E QAT in a plain loop, QAT in
a Lightning ``Trainer`` (:class:`~litquant.callbacks.QuantizationAwareTraining`), and ONNX Runtime.

Each method writes one self-contained artifact (``<out>/<method>.pt2`` or ``<out>/onnxruntime.int8.onnx``)
and a JSON sidecar beside it (``.json``: method, library versions, input spec with the normalisation, the
accuracy measured on a few validation batches).

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization import export_fp32, quantize

    dm = MNISTDataModule(train_size=2000)
    export_fp32("fp32.ckpt", "out", datamodule=dm)            # out/fp32.pt2, out/onnxruntime.fp32.onnx
    artifact = quantize("ptq", "fp32.ckpt", dm, "out")         # out/ptq.pt2 (+ out/ptq.json)
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from litquant.io import write_json
from litquant.quantization.calibration import CalibrationConfig
from litquant.quantization.pt2e import artifact_meta, export_program, save_program, sidecar_path

__all__ = ["METHODS", "CalibrationConfig", "artifact_name", "export_fp32", "quantize"]

#: The int8 methods, in the report's order.
METHODS = ("ptq", "qat", "lightning-qat", "onnxruntime")


def artifact_name(method: str) -> str:
    """The file name a method's artifact gets in the output folder (``fp32``: the fp32 ``.pt2``)."""
    return "onnxruntime.int8.onnx" if method == "onnxruntime" else f"{method}.pt2"


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _val_accuracy(model: Any, fp32: Any, datamodule: Any, batches: int) -> dict[str, Any]:
    from litquant.runtime import evaluate

    samples = min(len(datamodule.split("val")), batches * 256)
    return {"split": "val", "samples": samples,
            "int8": evaluate(model, datamodule, "val", 256, batches),
            "fp32": evaluate(fp32, datamodule, "val", 256, batches)}


def _exported_from(artifact: Path, checkpoint: str | os.PathLike) -> bool:
    """Whether ``artifact`` exists and was exported from ``checkpoint`` as it is now (sidecar and times)."""
    from litquant.runtime import read_sidecar

    if not artifact.is_file() or read_sidecar(artifact).get("checkpoint") != str(checkpoint):
        return False
    return artifact.stat().st_mtime >= Path(checkpoint).stat().st_mtime


def _export_fp32_onnx(net: torch.nn.Module, path: Path, datamodule: Any, checkpoint: str | os.PathLike) -> Path:
    from litquant.quantization.onnx_runtime import export_onnx

    export_onnx(net, path)
    meta = artifact_meta("onnxruntime-fp32", "fp32", datamodule=datamodule, checkpoint=checkpoint)
    write_json(sidecar_path(path), {**meta, "artifact": path.name, "size_bytes": path.stat().st_size})
    return path


def export_fp32(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, datamodule: Any = None,
                onnx: bool = True, progress: bool = True) -> Path:
    """Export the checkpoint's fp32 model as ``<out>/fp32.pt2`` and, with ``onnx``,
    ``<out>/onnxruntime.fp32.onnx`` (each with a sidecar). Returns the ``.pt2`` path."""
    from litquant.checkpoints import load_classifier

    out_dir = Path(out_dir)
    net = load_classifier(checkpoint).model.eval()
    _note(progress, "exporting the fp32 model (torch.export)...")
    program = export_program(net, (torch.zeros(2, 1, 28, 28),))
    path = save_program(program, out_dir / "fp32.pt2",
                        artifact_meta("fp32", "fp32", datamodule=datamodule, checkpoint=checkpoint))
    if onnx:
        _note(progress, "exporting the fp32 model (ONNX)...")
        _export_fp32_onnx(net, out_dir / "onnxruntime.fp32.onnx", datamodule, checkpoint)
    return path


def quantize(method: str, checkpoint: str | os.PathLike, datamodule: Any, out_dir: str | os.PathLike, *,
             calibration_batches: int = 32, qat_epochs: int = 1, qat_max_steps: int | None = None,
             qat_lr: float = 1e-4, accuracy_batches: int = 4, calibration: CalibrationConfig | None = None,
             progress: bool = True) -> Path:
    """Quantize the checkpoint's model to int8 with ``method`` and write the artifact and its sidecar.

    Args:
        method: one of :data:`METHODS`.
        checkpoint: a Lightning checkpoint of :class:`~litquant.model.MNISTClassifier`.
        datamodule: the data (calibration and fine-tuning use its training split; the sidecar's accuracy
            its validation split).
        out_dir: folder of the artifact.
        calibration_batches: training batches that calibrate PTQ and ONNX Runtime.
        qat_epochs: fine-tuning epochs of both QAT methods.
        qat_max_steps: cap on the fine-tuning steps (``None``: whole epochs).
        qat_lr: peak learning rate of the QAT fine-tuning.
        accuracy_batches: validation batches (of 256) measured for the sidecar (0: skip).
        calibration: activation observer and weight granularity (default: each method's own); recorded in
            the description as ``calibration``.
        progress: progress output on stderr.

    Returns:
        The artifact's path.
    """
    if method not in METHODS:
        raise ValueError(f"unknown quantization method {method!r}: choose one of {', '.join(METHODS)}")
    from litquant.checkpoints import load_classifier

    out_dir = Path(out_dir)
    datamodule.setup("fit")
    path = out_dir / artifact_name(method)
    start = time.perf_counter()
    _note(progress, f"{method}: quantizing {checkpoint} ...")
    net = load_classifier(checkpoint).model.eval()
    reference = copy.deepcopy(net)  # QAT fine-tunes `net` in place; accuracy compares with the original
    from litquant.cpu import cpu_info

    calibration = calibration or CalibrationConfig()
    # the CPU it was quantized (and checked) on, and how it was calibrated
    extra: dict[str, Any] = {"cpu": cpu_info().as_dict(), "calibration": calibration.describe(method)}
    if method == "onnxruntime":
        from litquant.quantization.onnx_runtime import quantize_onnxruntime
        from litquant.runtime import load_artifact

        fp32_onnx = out_dir / "onnxruntime.fp32.onnx"
        if not _exported_from(fp32_onnx, checkpoint):
            _export_fp32_onnx(net, fp32_onnx, datamodule, checkpoint)
        extra["onnxruntime"] = quantize_onnxruntime(fp32_onnx, path, datamodule,
                                                    calibration_batches=calibration_batches,
                                                    calibration=calibration)
        extra["calibration_batches"] = calibration_batches
        if accuracy_batches:
            extra["accuracy"] = _val_accuracy(load_artifact(path), reference, datamodule, accuracy_batches)
        meta = artifact_meta(method, "int8", datamodule=datamodule, checkpoint=checkpoint, **extra)
        write_json(sidecar_path(path), {**meta, "artifact": path.name, "size_bytes": path.stat().st_size})
    else:
        if method == "ptq":
            from litquant.quantization.ptq import quantize_ptq

            program = quantize_ptq(net, datamodule, calibration_batches=calibration_batches,
                                   calibration=calibration, progress=progress)
            extra["calibration_batches"] = calibration_batches
        elif method == "qat":
            from litquant.quantization.qat import quantize_qat

            program = quantize_qat(net, datamodule, epochs=qat_epochs, max_steps=qat_max_steps, lr=qat_lr,
                                   calibration=calibration, progress=progress)
            extra["fine_tuning"] = {"epochs": qat_epochs, "max_steps": qat_max_steps, "lr": qat_lr}
        else:
            from litquant.quantization.lightning_qat import quantize_lightning_qat

            program = quantize_lightning_qat(checkpoint, datamodule, epochs=qat_epochs, max_steps=qat_max_steps,
                                             lr=qat_lr, calibration=calibration, progress=progress)
            extra["fine_tuning"] = {"epochs": qat_epochs, "max_steps": qat_max_steps, "lr": qat_lr}
        extra["quantizer"] = "torchao X86InductorQuantizer"
        if accuracy_batches:
            extra["accuracy"] = _val_accuracy(program.module(), reference, datamodule, accuracy_batches)
        save_program(program, path, artifact_meta(method, "int8", datamodule=datamodule, checkpoint=checkpoint,
                                                  **extra))
    _note(progress, f"{method}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in "
                    f"{time.perf_counter() - start:.0f} s")
    return path
