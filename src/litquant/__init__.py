"""litquant: PyTorch Lightning on MNIST end to end, and fast int8 models from it."""

import contextlib
import logging
import warnings
from collections.abc import Iterator

__version__ = "0.1.0"

#: Warnings that libraries raise about their own internals: nothing a litquant user can act on.
LIBRARY_INTERNAL_WARNINGS = [(r".*isinstance\(treespec, LeafSpec\)", FutureWarning)]


def ignore_library_internal_warnings() -> None:
    """Ignore :data:`LIBRARY_INTERNAL_WARNINGS` (for good in the CLI; library code wraps it in
    ``warnings.catch_warnings()`` around its own calls)."""
    for message, category in LIBRARY_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message, category)


@contextlib.contextmanager
def library_internal_warnings_ignored() -> Iterator[None]:
    """:func:`ignore_library_internal_warnings` for the calls inside the block only (what library code uses)."""
    with warnings.catch_warnings():
        ignore_library_internal_warnings()
        yield


class _NothingToActOn(logging.Filter):
    """Drops library log messages that ask nothing of the user: torchao's CUDA-only kernel libraries not
    loading into a CPU-only torch (they still show with a CUDA build, where they would matter), torchao
    registering its enums with torch's pytree in the deprecated way, Lightning's advertisement for litlogger,
    and the ONNX exporter noting that torchvision (whose operators an MNIST model never uses) is missing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "torchao" and message.startswith("Failed to load"):
            import torch

            return torch.version.cuda is not None
        return not any(noise in message for noise in _NOISE)


_NOISE = ("is an Enum subclass and is now natively supported", "try installing [litlogger]",
          "torchvision is not installed. Skipping")
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "lightning.pytorch.utilities.rank_zero",
                  "lightning.fabric.utilities.rank_zero", "torch.onnx._internal.exporter._registration")


def quiet_library_logs() -> None:
    """Install :class:`_NothingToActOn` on the loggers it concerns (the CLI does, at start; importing litquant
    changes no global state)."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _NothingToActOn) for existing in logger.filters):
            logger.addFilter(_NothingToActOn())
