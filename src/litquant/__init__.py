"""litquant: PyTorch Lightning on MNIST end to end, and fast int8 models from it."""

__version__ = "0.1.0"
