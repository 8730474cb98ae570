"""Lightning callbacks of litquant, one concept per module."""

from litquant.callbacks.interrupted_checkpoint import InterruptedCheckpoint
from litquant.callbacks.metrics_report import MetricsReport
from litquant.callbacks.quantization_aware_training import QuantizationAwareTraining

__all__ = ["InterruptedCheckpoint", "MetricsReport", "QuantizationAwareTraining"]
