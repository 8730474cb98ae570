"""Placeholder: being written."""
from lightning.pytorch import Callback


class MetricsReport(Callback):
    pass
