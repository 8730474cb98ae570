"""Lightning callbacks of litquant, one concept per module.

The callbacks load on first use, so that importing a helper module of this package (such as
:mod:`litquant.callbacks.metrics_tables`) imports neither Lightning nor the quantization stack.
:class:`QuantizationAwareTraining` lives with the rest of quantization (:mod:`litquant.quantization.callback`)
and is re-exported here.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litquant.callbacks.confusion_matrix import ConfusionMatrix
    from litquant.callbacks.interrupted_checkpoint import InterruptedCheckpoint
    from litquant.callbacks.metrics_report import MetricsReport
    from litquant.quantization.callback import QuantizationAwareTraining

__all__ = ["ConfusionMatrix", "InterruptedCheckpoint", "MetricsReport", "QuantizationAwareTraining"]

_MODULES = {"ConfusionMatrix": "litquant.callbacks.confusion_matrix",
            "InterruptedCheckpoint": "litquant.callbacks.interrupted_checkpoint",
            "MetricsReport": "litquant.callbacks.metrics_report",
            "QuantizationAwareTraining": "litquant.quantization.callback"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
