"""Calibration choices shared by every int8 method: how activation ranges are observed, and whether weights
get one scale per output channel or one per tensor.

=================  ==========================================  ===================================
``observer``       PT2E (PTQ; QAT through ``FakeQuantize``)    ONNX Runtime ``calibrate_method``
=================  ==========================================  ===================================
``minmax``         ``MinMaxObserver``: the whole range seen     ``MinMax``
``moving_average`` ``MovingAverageMinMaxObserver`` (0.01)       ``MinMax`` with ``CalibMovingAverage``
``histogram``      ``HistogramObserver`` (least-squares range)  ``Entropy`` (the histogram method)
``percentile``     :class:`PercentileObserver`                  ``Percentile`` (``CalibPercentile``)
=================  ==========================================  ===================================

``None`` keeps each method's own default (:data:`PTQ_OBSERVER` for PTQ, :data:`QAT_OBSERVER` for both QAT methods,
:data:`ONNXRUNTIME_OBSERVER` for ONNX Runtime: each method's ``default_observer``), which
:meth:`CalibrationConfig.resolved` fills in and the description records.

``reduce_range`` (``"auto"``, ``True``, ``False``) is resolved by :func:`litquant.cpu.choose_reduce_range`: 7-bit
activations (PT2E) or ONNX Runtime weight formats that do not saturate, only on a CPU without VNNI/AMX.

Example::

    from litquant.quantization.calibration import CalibrationConfig, quantizer_for

    config = CalibrationConfig(observer="percentile", percentile=99.99, per_channel=False)
    quantizer = quantizer_for(config, is_qat=False)     # an X86InductorQuantizer for prepare_pt2e
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torchao.quantization.pt2e import (
    FakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
)
from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)

from litquant.cpu import ReduceRange, check_reduce_range, choose_reduce_range

__all__ = ["OBSERVERS", "ONNXRUNTIME_OBSERVER", "PTQ_OBSERVER", "QAT_OBSERVER", "CalibrationConfig", "Observer",
           "PercentileObserver", "check_percentile", "onnxruntime_options", "quantizer_for"]

#: The activation observers a user can choose (the type of ``--quant.observer``).
Observer = Literal["minmax", "moving_average", "histogram", "percentile"]
OBSERVERS: tuple[str, ...] = get_args(Observer)

#: The observer PT2E post-training calibration uses when none is chosen (least-squares range).
PTQ_OBSERVER: Observer = "histogram"
#: The observer inside PT2E fake quantization when none is chosen (fused with the fake quantization).
QAT_OBSERVER: Observer = "moving_average"
#: The observer ONNX Runtime calibrates with when none is chosen.
ONNXRUNTIME_OBSERVER: Observer = "minmax"

#: The smallest scale an observer returns (the x86 default config's ``eps``).
_EPS = 2**-12

#: ``torch.quantile`` refuses inputs above 2**24 elements: larger tensors are subsampled evenly.
_QUANTILE_LIMIT = 2**24


def check_percentile(percentile: float, option: str = "percentile") -> None:
    """Refuse a percentile outside (50, 100], naming ``option`` (``--quant.percentile`` on the command line)."""
    if not 50.0 < float(percentile) <= 100.0:
        raise ValueError(f"{option} must be in (50, 100], got {percentile}")


class PercentileObserver(MinMaxObserver):
    """Per-tensor observer whose range is the ``percentile``-th and ``100 - percentile``-th percentiles of
    each batch (the widest over all batches), so that a few outliers do not stretch the range."""

    def __init__(self, percentile: float = 99.99, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_percentile(percentile)
        self.percentile = float(percentile)

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().flatten().to(self.min_val.dtype)
        if x.numel() > _QUANTILE_LIMIT:
            x = x[:: -(-x.numel() // _QUANTILE_LIMIT)]
        q = self.percentile / 100.0
        low, high = torch.quantile(x, torch.tensor([1.0 - q, q], dtype=x.dtype, device=x.device))
        self.min_val.copy_(torch.min(low, self.min_val))
        self.max_val.copy_(torch.max(high, self.max_val))
        return x_orig

    def extra_repr(self) -> str:
        return f"percentile={self.percentile}, min_val={self.min_val}, max_val={self.max_val}"


@dataclass(frozen=True)
class CalibrationConfig:
    """How ranges are calibrated.

    Args:
        observer: one of :data:`OBSERVERS`, or ``None`` for the method's default.
        percentile: the percentile kept by the ``percentile`` observer (ignored by the others).
        per_channel: weights quantized with one scale per output channel (``True``) or one per tensor.
        fp32_layers: module names (``"conv2"``, ``"fc1"``) left in fp32: not annotated by the quantizer, so
            their inputs and weights stay float (PT2E methods only).
        reduce_range: ``"auto"`` (from the CPU), ``True`` (7 bits where full-range int8 kernels would saturate)
            or ``False`` (full 8 bits); see :func:`litquant.cpu.choose_reduce_range`.
    """

    observer: str | None = None
    percentile: float = 99.99
    per_channel: bool = True
    fp32_layers: tuple[str, ...] = ()
    reduce_range: ReduceRange = "auto"

    def __post_init__(self) -> None:
        if self.observer is not None and self.observer not in OBSERVERS:
            raise ValueError(f"unknown observer {self.observer!r}: choose one of {', '.join(OBSERVERS)}")
        check_percentile(self.percentile)
        if isinstance(self.fp32_layers, str) or not all(isinstance(n, str) and n for n in self.fp32_layers):
            raise ValueError(f"fp32_layers must be a sequence of module names, got {self.fp32_layers!r}")
        check_reduce_range(self.reduce_range, option="reduce_range")
        object.__setattr__(self, "fp32_layers", tuple(self.fp32_layers))

    def resolved(self, default_observer: str) -> CalibrationConfig:
        """This config with ``observer`` set to ``default_observer`` (a method's ``default_observer``) when unset."""
        return self if self.observer else dataclasses.replace(self, observer=default_observer)

    def describe(self, default_observer: str) -> dict[str, Any]:
        """The artifact description's ``calibration`` entry: observer (``default_observer`` when unset),
        percentile (or ``None``), per_channel, and ``fp32_layers`` when some layers are left in fp32."""
        observer = self.resolved(default_observer).observer
        entry: dict[str, Any] = {"observer": observer,
                                 "percentile": self.percentile if observer == "percentile" else None,
                                 "per_channel": self.per_channel}
        if self.fp32_layers:
            entry["fp32_layers"] = list(self.fp32_layers)
        return entry

    def check_layers(self, net: torch.nn.Module) -> None:
        """Refuse ``fp32_layers`` naming no conv/linear module of ``net`` (a typo would quantize everything)."""
        layers = [name for name, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        unknown = [name for name in self.fp32_layers if name not in layers]
        if unknown:
            raise ValueError(f"fp32_layers {', '.join(unknown)}: no such conv/linear layer; the model has "
                             f"{', '.join(layers)}")


def _activation_constructor(config: CalibrationConfig, is_qat: bool) -> Any:
    observer = config.observer or (QAT_OBSERVER if is_qat else PTQ_OBSERVER)
    kwargs: dict[str, Any] = {"eps": _EPS}
    if observer == "moving_average" and is_qat:
        return FusedMovingAvgObsFakeQuantize.with_args(**kwargs)
    observer_class = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver,
                      "histogram": HistogramObserver, "percentile": PercentileObserver}[observer]
    if observer == "percentile":
        kwargs["percentile"] = float(config.percentile)
    if is_qat:
        return FakeQuantize.with_args(observer=observer_class, **kwargs)
    return observer_class.with_args(**kwargs)


def _per_tensor_weight_constructor(is_qat: bool) -> Any:
    if is_qat:
        return FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAverageMinMaxObserver, eps=_EPS)
    return MinMaxObserver.with_args(eps=_EPS)


def quantizer_for(config: CalibrationConfig | None = None, *, is_qat: bool,
                  reduce_range: ReduceRange | None = None) -> X86InductorQuantizer:
    """torchao's ``X86InductorQuantizer`` (``uint8`` per-tensor activations, ``int8`` symmetric weights) with
    the activation observer and weight granularity of ``config``; the modules of ``config.fp32_layers`` get no
    config, so they stay fp32.

    Args:
        config: the calibration; default: :class:`CalibrationConfig` (:data:`PTQ_OBSERVER` or
            :data:`QAT_OBSERVER`, per-channel weights: the x86 default config's layout).
        is_qat: fake quantization for quantization-aware training, else observers for post-training calibration.
        reduce_range: overrides ``config.reduce_range``; activations are 7-bit (``quant_max`` 127) when it
            resolves to ``True`` on this CPU (:func:`litquant.cpu.choose_reduce_range`).

    Raises:
        ValueError: ``reduce_range`` is not ``"auto"``, ``True`` or ``False``.
    """
    config = config or CalibrationConfig()
    setting = config.reduce_range if reduce_range is None else reduce_range
    default = get_default_x86_inductor_quantization_config(
        is_qat=is_qat, reduce_range=choose_reduce_range(setting).reduce_range)
    act = default.input_activation
    activation = QuantizationSpec(dtype=act.dtype, quant_min=act.quant_min, quant_max=act.quant_max,
                                  qscheme=act.qscheme,
                                  observer_or_fake_quant_ctr=_activation_constructor(config, is_qat))
    weight = default.weight
    if not config.per_channel:
        weight = QuantizationSpec(dtype=weight.dtype, quant_min=weight.quant_min, quant_max=weight.quant_max,
                                  qscheme=torch.per_tensor_symmetric,
                                  observer_or_fake_quant_ctr=_per_tensor_weight_constructor(is_qat))
    quantizer = X86InductorQuantizer()
    quantizer.set_global(QuantizationConfig(activation, activation, weight, default.bias, is_qat))
    for name in config.fp32_layers:
        quantizer.set_module_name_qconfig(name, None)
    return quantizer


def onnxruntime_options(config: CalibrationConfig) -> dict[str, Any]:
    """Keyword arguments of ``onnxruntime.quantization.quantize_static`` for ``config``: ``calibrate_method``,
    ``per_channel`` and ``extra_options`` (an unset observer: :data:`ONNXRUNTIME_OBSERVER`).

    Raises:
        ValueError: ``config`` leaves layers in fp32, which ONNX Runtime's static quantization does not do here.
    """
    from onnxruntime.quantization import CalibrationMethod

    if config.fp32_layers:
        raise ValueError("fp32_layers applies to the PT2E methods (ptq, qat, lightning-qat), not to onnxruntime")
    observer = config.resolved(ONNXRUNTIME_OBSERVER).observer
    extra: dict[str, Any] = {}
    if observer == "moving_average":
        extra = {"CalibMovingAverage": True, "CalibMovingAverageConstant": 0.01}
    elif observer == "percentile":
        extra = {"CalibPercentile": float(config.percentile)}
    method = {"minmax": CalibrationMethod.MinMax, "moving_average": CalibrationMethod.MinMax,
              "histogram": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}[observer]
    return {"calibrate_method": method, "per_channel": config.per_channel, "extra_options": extra}
