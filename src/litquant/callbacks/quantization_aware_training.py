"""Placeholder: being written."""
from lightning.pytorch import Callback


class QuantizationAwareTraining(Callback):
    pass
