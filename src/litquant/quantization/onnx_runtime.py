"""Static int8 quantization with ONNX Runtime, with the weight format chosen for the CPU.

The fp32 model is exported to ONNX (``torch.onnx.export``, dynamic batch), then quantized with
``onnxruntime.quantization.quantize_static`` in QDQ format, calibrated on training batches.

On x86 CPUs without VNNI (AVX2 only, AVX-512 without VNNI), ONNX Runtime multiplies ``uint8`` activations
by ``int8`` weights with an instruction that saturates pairs of products to 16 bits, and such models can
lose several points of accuracy. Quantizing the weights to 7 bits (``reduce_range``) or as ``uint8``
avoids the saturation on every CPU. Which candidates are eligible follows ``reduce_range``
(:func:`eligible_candidates`; ``"auto"`` resolves from the CPU with :func:`litquant.cpu.choose_reduce_range`):
7-bit (a CPU without VNNI/AMX): only those two; full range (a CPU with VNNI): the full-range ``uint8`` and
plain ``int8`` weights. Every candidate is built and the eligible one whose predictions agree best with fp32
on held-out batches is kept. The check of all three is recorded in the artifact's description.

Example::

    from litquant.checkpoints import load_classifier
    from litquant.data import MNISTDataModule
    from litquant.quantization.export import export_onnx
    from litquant.quantization.config import QuantizeConfig
    from litquant.quantization.onnx_runtime import quantize_onnxruntime

    net = load_classifier("fp32.ckpt").model
    export_onnx(net, "fp32.onnx")
    choice = quantize_onnxruntime("fp32.onnx", "int8.onnx", MNISTDataModule(train_size=2000),
                                  QuantizeConfig(calibration_batches=8))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from litquant.cpu import choose_reduce_range
from litquant.data.batches import labelled_batches
from litquant.files import atomic_path
from litquant.quantization.calibration import ONNXRUNTIME_OBSERVER, onnxruntime_options
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.export import fp32_onnx_for
from litquant.quantization.methods import QuantizationMethod, QuantizeJob, register_method
from litquant.quantization.pt2e import Example

__all__ = ["CANDIDATES", "OnnxRuntime", "eligible_candidates", "quantize_onnxruntime"]

#: Weight formats tried: name -> (weight type, reduce_range, safe without VNNI).
CANDIDATES: dict[str, tuple[str, bool, bool]] = {
    "s8-reduce-range": ("QInt8", True, True),
    "u8-weights": ("QUInt8", False, True),
    "s8": ("QInt8", False, False),
}


def eligible_candidates(reduce_range: bool) -> list[str]:
    """The :data:`CANDIDATES` that may be kept: with ``reduce_range`` (7 bits, a CPU without VNNI) those safe
    without VNNI, else (full range) those with full-range weights."""
    return [name for name, (_, seven_bit, safe) in CANDIDATES.items() if (safe if reduce_range else not seven_bit)]


class _Reader:
    """``CalibrationDataReader`` over the model's inputs of training batches."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def _feeds(names: list[str], inputs: Any, to_arguments: Callable[[Any], Example] | None) -> dict[str, np.ndarray]:
    """A batch's inputs as ONNX Runtime's feeds: the model's arguments, positional then keyword, by input name."""
    args, kwargs = ((inputs,), {}) if to_arguments is None else to_arguments(inputs)
    return dict(zip(names, [value.numpy() for value in (*args, *kwargs.values())], strict=True))


def _session(path: Path, level: str = "ORT_ENABLE_ALL") -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_onnxruntime(fp32_path: str | os.PathLike, out_path: str | os.PathLike, datamodule: Any,
                         config: QuantizeConfig | None = None, *, check_batches: int = 4,
                         inputs: Callable[[Any], Example] | None = None, logits_index: int = 0) -> dict[str, Any]:
    """Quantize an fp32 ONNX model to int8 QDQ, choosing the weight format by a check against fp32 among the
    :func:`eligible_candidates` of ``config.reduce_range`` (resolved for this CPU).

    Args:
        fp32_path: the fp32 ONNX model (:func:`~litquant.quantization.export.export_onnx`).
        out_path: the int8 model written.
        datamodule: the data: ``config.calibration_batches`` shuffled training batches calibrate,
            ``check_batches`` validation batches of 256 choose the weight format.
        config: the options; its calibration picks ONNX Runtime's calibration method (see
            :mod:`litquant.quantization.calibration`) and per-channel or per-tensor weights.
        check_batches: validation batches of the check against fp32.
        inputs: turns a batch's inputs into the model's ``(args, kwargs)``, fed by name in that order (default:
            they are the one input).
        logits_index: the position of the class logits among the model's outputs.

    Returns:
        The choice and the check (``{"weights": ..., "reduce_range": ..., "eligible": [...], "check": {...}}``),
        for the artifact's description.

    Raises:
        ValueError: ``config`` leaves layers in fp32 (PT2E methods only).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    config = config or QuantizeConfig()
    calibration_batches = config.calibration_batches
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    names = [spec.name for spec in _session(fp32_path).get_inputs()]
    calibration_inputs = [_feeds(names, x, inputs)
                          for x, _ in labelled_batches(datamodule, "train", limit=calibration_batches, shuffle=True)]
    held_out = [(_feeds(names, x, inputs), y.numpy()) for x, y in labelled_batches(datamodule, "val", 256,
                                                                                     check_batches)]
    labels = np.concatenate([y for _, y in held_out])

    def logits_of(session: Any) -> np.ndarray:
        return np.concatenate([session.run(None, feeds)[logits_index] for feeds, _ in held_out])

    fp32_logits = logits_of(_session(fp32_path))
    calibration = config.calibration
    options = onnxruntime_options(calibration)
    eligible = eligible_candidates(choose_reduce_range(calibration.reduce_range).reduce_range)
    check: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="litquant-ort-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        for name, (weights, reduce_range, _) in CANDIDATES.items():
            candidate = Path(scratch) / f"{name}.onnx"
            quantize_static(str(prepared), str(candidate), _Reader(calibration_inputs),
                            quant_format=QuantFormat.QDQ, reduce_range=reduce_range,
                            activation_type=QuantType.QUInt8, weight_type=getattr(QuantType, weights), **options)
            logits = logits_of(_session(candidate))
            check[name] = {"agreement": float((logits.argmax(1) == fp32_logits.argmax(1)).mean()),
                           "mean_abs_logit_error": float(np.abs(logits - fp32_logits).mean()),
                           "val_accuracy": float((logits.argmax(1) == labels).mean())}
        best = max(eligible, key=lambda n: (check[n]["agreement"], -check[n]["mean_abs_logit_error"]))
        with atomic_path(out_path) as tmp:
            tmp.write_bytes((Path(scratch) / f"{best}.onnx").read_bytes())
    weights, reduce_range, _ = CANDIDATES[best]
    return {
        "weights": best,
        "weight_type": weights,
        "reduce_range": reduce_range,
        "eligible": eligible,
        "activation_type": "QUInt8",
        "per_channel": options["per_channel"],
        "calibrate_method": options["calibrate_method"].name,
        "quant_format": "QDQ",
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "check": {"split": "val", "samples": len(labels),
                  "fp32_val_accuracy": float((fp32_logits.argmax(1) == labels).mean()), "candidates": check},
    }


class OnnxRuntime(QuantizationMethod):
    """``onnxruntime``: the fp32 ONNX model of the checkpoint (cached in the output folder) quantized with
    :func:`quantize_onnxruntime`, written as ``onnxruntime.int8.onnx``."""

    name = "onnxruntime"
    label = "ONNX Runtime static int8 (QDQ)"
    default_observer = ONNXRUNTIME_OBSERVER
    onnx = True

    def run(self, job: QuantizeJob) -> Path:
        batches = job.config.calibration_batches
        with tempfile.TemporaryDirectory(prefix="litquant-onnx-") as folder:
            scratch = Path(folder)
            fp32_onnx = fp32_onnx_for(job.checked, job.out_dir, scratch / "fp32.onnx", job.checkpoint,
                                      job.checkpoint_sha256, job.datamodule)
            choice = quantize_onnxruntime(fp32_onnx, scratch / "int8.onnx", job.datamodule, job.config,
                                          inputs=job.checked.inputs, logits_index=job.checked.logits_index)
            saturates = not CANDIDATES[choice["weights"]][2]
            return job.save_onnx(scratch / "int8.onnx", onnxruntime=choice, calibration_batches=batches,
                                 int8_range=job.range_choice.describe(saturates_without_vnni=saturates))


register_method(OnnxRuntime())
