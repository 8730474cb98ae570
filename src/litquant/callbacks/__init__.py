"""Lightning callbacks of litquant, one concept per module.

:class:`QuantizationAwareTraining` lives with the rest of quantization (:mod:`litquant.quantization.callback`)
and is re-exported here, loaded on first use, so that importing the training callbacks does not import the
quantization stack.
"""

from typing import Any

from litquant.callbacks.interrupted_checkpoint import InterruptedCheckpoint
from litquant.callbacks.metrics_report import MetricsReport

__all__ = ["InterruptedCheckpoint", "MetricsReport", "QuantizationAwareTraining"]


def __getattr__(name: str) -> Any:
    if name == "QuantizationAwareTraining":
        from litquant.quantization.callback import QuantizationAwareTraining

        return QuantizationAwareTraining
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
