"""The options of a quantization run, as one typed object: :class:`QuantizeConfig`.

The CLI registers it once as ``--quant.*`` (``litquant quantize``, ``litquant demo`` and the benchmarks accept
the same options, in flags or in a ``--config`` YAML file); Python code passes it to
:func:`~litquant.quantization.quantize`.

Example::

    from litquant.quantization import QuantizeConfig, quantize

    config = QuantizeConfig(calibration_batches=8, observer="percentile", per_channel=False)
    quantize("ptq", "fp32.ckpt", datamodule, "out", config=config)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from litquant.cpu import ReduceRange, check_reduce_range
from litquant.quantization.calibration import CalibrationConfig, Observer

__all__ = ["QuantizeConfig"]


@dataclass(frozen=True)
class QuantizeConfig:
    """How a checkpoint is quantized; each method reads the options it uses.

    Args:
        calibration_batches: training batches that calibrate the activation ranges (PTQ, ONNX Runtime).
        qat_epochs: fine-tuning epochs of the QAT methods.
        qat_max_steps: cap on the QAT fine-tuning steps (``None``: whole epochs; 0 tells ``--method auto`` to
            try no QAT, and is refused by the QAT methods themselves).
        qat_lr: peak learning rate of the QAT fine-tuning.
        accuracy_batches: validation batches (of 256) measured for the artifact's description (0: skip).
        observer: activation observer; ``None`` keeps the method's own (histogram for ptq, moving_average for
            the QAT methods, minmax for onnxruntime).
        percentile: percentile kept by ``observer="percentile"``, in (50, 100].
        per_channel: weights with one scale per output channel (``True``) or one per tensor.
        fp32_layers: conv/linear module names left in fp32 (PT2E methods: ptq, qat, lightning-qat), recorded in
            the description; on the command line a YAML list, ``--quant.fp32_layers '[conv2, fc1]'``.
            ``--method auto`` chooses them itself.
        latency_batch_size: ``--method auto``: the batch size candidates are timed at.
        val_batches: ``--method auto``: validation batches (of 256) every candidate's accuracy is measured on.
        max_fp32_layers: ``--method auto``: the most layers left in fp32 (``None``: all but one).
        reduce_range: ``auto`` (default): 7-bit int8 ranges only on a CPU without VNNI/AMX, where full-range
            int8 kernels saturate (PT2E: 7-bit activations; ONNX Runtime: only weight formats that do not
            saturate), full 8 bits otherwise; ``true``/``false`` force it. Every method records the choice, why,
            and the CPU kind in the description's ``int8_range``.
    """

    calibration_batches: int = 32
    qat_epochs: int = 1
    qat_max_steps: int | None = None
    qat_lr: float = 1e-4
    accuracy_batches: int = 4
    observer: Observer | None = None
    percentile: float = 99.99
    per_channel: bool = True
    fp32_layers: tuple[str, ...] = ()
    latency_batch_size: int = 1
    val_batches: int = 8
    max_fp32_layers: int | None = None
    reduce_range: ReduceRange = "auto"

    def __post_init__(self) -> None:
        for name in ("calibration_batches", "qat_epochs", "latency_batch_size", "val_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"--quant.{name} must be at least 1, got {getattr(self, name)}")
        if self.qat_max_steps is not None and self.qat_max_steps < 0:
            raise ValueError(f"--quant.qat_max_steps must be 0 or more, got {self.qat_max_steps}")
        if self.max_fp32_layers is not None and self.max_fp32_layers < 0:
            raise ValueError(f"--quant.max_fp32_layers must be 0 or more, got {self.max_fp32_layers}")
        if self.accuracy_batches < 0:
            raise ValueError(f"--quant.accuracy_batches must be 0 or more, got {self.accuracy_batches}")
        check_reduce_range(self.reduce_range)  # e.g. null in a --config file, in the command line's words
        if not 50 < float(self.percentile) <= 100:
            raise ValueError(f"--quant.percentile must be in (50, 100], got {self.percentile}")
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))  # a list from YAML or the command line
        self.calibration  # noqa: B018 - validates the observer and layer names with CalibrationConfig's message

    @property
    def calibration(self) -> CalibrationConfig:
        """The observer and weight-granularity part, as :mod:`~litquant.quantization.calibration` takes it."""
        return CalibrationConfig(observer=self.observer, percentile=self.percentile, per_channel=self.per_channel,
                                 fp32_layers=self.fp32_layers, reduce_range=self.reduce_range)

    def fine_tuning(self) -> dict[str, Any]:
        """The description's ``fine_tuning`` entry of a QAT method: epochs, max_steps, lr."""
        return {"epochs": self.qat_epochs, "max_steps": self.qat_max_steps, "lr": self.qat_lr}

    def replace(self, **changes: Any) -> QuantizeConfig:
        return dataclasses.replace(self, **changes)
