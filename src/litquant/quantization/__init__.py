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
    from litquant.quantization import export_fp32, quantize

    dm = MNISTDataModule(train_size=2000)
    export_fp32("fp32.ckpt", "out", datamodule=dm)            # out/fp32.pt2, out/onnxruntime.fp32.onnx
    artifact = quantize("ptq", "fp32.ckpt", dm, "out")         # out/ptq.pt2 (+ out/ptq.json)
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from litquant.artifacts import (
    ArtifactDescription,
    ArtifactError,
    describe,
    file_sha256,
    load_artifact,
    read_description,
    save_onnx,
)
from litquant.quantization.calibration import CalibrationConfig
from litquant.quantization.pt2e import export_program, save_program

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


def _checked_net(checkpoint: str | os.PathLike, datamodule: Any) -> torch.nn.Module:
    """The checkpoint's model, in eval mode, refused unless it maps ``[N, 1, 28, 28]`` to ``[N, classes]``."""
    from litquant.checkpoints import load_classifier

    net = load_classifier(checkpoint).model.eval()
    classes = len(describe("fp32", "fp32", datamodule=datamodule).input.classes or ())
    try:
        with torch.no_grad():
            shape = list(net(torch.zeros(2, 1, 28, 28)).shape)
    except RuntimeError as err:
        shape = [f"an error ({str(err).splitlines()[0]})"]
    if shape != [2, classes]:
        found = f"[N, {', '.join(map(str, shape[1:]))}]" if shape[:1] == [2] else shape[0]
        raise ArtifactError(f"{checkpoint}: its model maps [N, 1, 28, 28] to {found}, not to [N, {classes}] "
                            f"(the {classes} classes of the data); quantize a checkpoint of a {classes}-class "
                            "model, nothing was written")
    return net


def _unchanged(checkpoint: str | os.PathLike, sha256: str) -> None:
    """Refuse to write an artifact whose checkpoint file changed while it was being made."""
    if file_sha256(checkpoint) != sha256:
        raise ArtifactError(f"{checkpoint} changed while it was being quantized; run again once it is written")


def _export_fp32_onnx(net: torch.nn.Module, path: Path, description: ArtifactDescription) -> Path:
    """Export ``net`` to ONNX as ``path``, the description embedded (the export runs in a private folder)."""
    from litquant.quantization.onnx_runtime import export_onnx

    with tempfile.TemporaryDirectory(prefix="litquant-onnx-") as scratch:
        exported = export_onnx(net, Path(scratch) / "fp32.onnx")
        return save_onnx(exported, path, description)


def _fp32_onnx_for(net: torch.nn.Module, cache: Path, private: Path, description: ArtifactDescription) -> Path:
    """A private copy of the fp32 ONNX model of the checkpoint ``description`` names: the cached file when the
    hash embedded in it is that checkpoint's, else a new export, which then replaces the cache. Quantizing the
    private copy keeps a concurrent run that rewrites the cache from changing this run's model."""
    if cache.is_file():
        with contextlib.suppress(OSError):
            private.write_bytes(cache.read_bytes())
        with contextlib.suppress(ArtifactError, OSError):
            cached = read_description(private)
            if cached.method == "onnxruntime-fp32" and cached.checkpoint_sha256 == description.checkpoint_sha256:
                return private
    _export_fp32_onnx(net, private, description)
    save_onnx(private, cache, description)
    return private


def export_fp32(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, datamodule: Any = None,
                onnx: bool = True, progress: bool = True) -> Path:
    """Export the checkpoint's fp32 model as ``<out>/fp32.pt2`` and, with ``onnx``,
    ``<out>/onnxruntime.fp32.onnx`` (each describing itself, with a readable JSON copy). Returns the ``.pt2``."""
    out_dir = Path(out_dir)
    sha256 = file_sha256(checkpoint)
    net = _checked_net(checkpoint, datamodule)
    _note(progress, "exporting the fp32 model (torch.export)...")
    program = export_program(net, (torch.zeros(2, 1, 28, 28),))
    _unchanged(checkpoint, sha256)
    path = save_program(program, out_dir / "fp32.pt2", describe("fp32", "fp32", datamodule=datamodule,
                                                                checkpoint=checkpoint, checkpoint_sha256=sha256))
    if onnx:
        _note(progress, "exporting the fp32 model (ONNX)...")
        _export_fp32_onnx(net, out_dir / "onnxruntime.fp32.onnx",
                          describe("onnxruntime-fp32", "fp32", datamodule=datamodule, checkpoint=checkpoint,
                                   checkpoint_sha256=sha256))
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
    out_dir = Path(out_dir)
    datamodule.setup("fit")
    path = out_dir / artifact_name(method)
    start = time.perf_counter()
    _note(progress, f"{method}: quantizing {checkpoint} ...")
    sha256 = file_sha256(checkpoint)
    net = _checked_net(checkpoint, datamodule)
    reference = copy.deepcopy(net)  # QAT fine-tunes `net` in place; accuracy compares with the original
    from litquant.cpu import cpu_info

    calibration = calibration or CalibrationConfig()
    # the CPU it was quantized (and checked) on, and how it was calibrated
    common = {"cpu": cpu_info().as_dict(), "calibration": calibration.describe(method)}

    def description(**extra: Any) -> ArtifactDescription:
        return describe(method, "int8", datamodule=datamodule, checkpoint=checkpoint, checkpoint_sha256=sha256,
                        **common, **extra)

    if method == "onnxruntime":
        from litquant.quantization.onnx_runtime import quantize_onnxruntime

        with tempfile.TemporaryDirectory(prefix="litquant-onnx-") as folder:
            scratch = Path(folder)
            fp32_onnx = _fp32_onnx_for(net, out_dir / "onnxruntime.fp32.onnx", scratch / "fp32.onnx",
                                       describe("onnxruntime-fp32", "fp32", datamodule=datamodule,
                                                checkpoint=checkpoint, checkpoint_sha256=sha256))
            choice = quantize_onnxruntime(fp32_onnx, scratch / "int8.onnx", datamodule,
                                          calibration_batches=calibration_batches, calibration=calibration)
            int8 = save_onnx(scratch / "int8.onnx", scratch / "described.onnx",
                             description(onnxruntime=choice, calibration_batches=calibration_batches))
            accuracy = _val_accuracy(load_artifact(int8), reference, datamodule, accuracy_batches) \
                if accuracy_batches else None
            _unchanged(checkpoint, sha256)
            save_onnx(int8, path, description(accuracy=accuracy, onnxruntime=choice,
                                              calibration_batches=calibration_batches))
    else:
        extra: dict[str, Any] = {}
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
        accuracy = _val_accuracy(program.module(), reference, datamodule, accuracy_batches) \
            if accuracy_batches else None
        _unchanged(checkpoint, sha256)
        save_program(program, path, description(accuracy=accuracy, **extra))
    _note(progress, f"{method}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in "
                    f"{time.perf_counter() - start:.0f} s")
    return path
