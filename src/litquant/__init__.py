"""litquant: PyTorch Lightning on MNIST end to end, and fast int8 models from it."""

import logging
import warnings

__version__ = "0.1.0"

#: Warnings that libraries raise about their own internals: nothing a litquant user can act on.
LIBRARY_INTERNAL_WARNINGS = [(r".*isinstance\(treespec, LeafSpec\)", FutureWarning)]


def ignore_library_internal_warnings() -> None:
    """Ignore :data:`LIBRARY_INTERNAL_WARNINGS` (for good in the CLI; library code wraps it in
    ``warnings.catch_warnings()`` around its own calls)."""
    for message, category in LIBRARY_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message, category)


class _NothingToActOn(logging.Filter):
    """Drops two start-up messages that ask nothing of the user: torchao's CUDA-only kernel libraries not
    loading into a CPU-only torch (they still show with a CUDA build, where they would matter), and torchao
    registering its enums with torch's pytree in the deprecated way."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "torchao" and message.startswith("Failed to load"):
            import torch

            return torch.version.cuda is not None
        return "is an Enum subclass and is now natively supported" not in message


for _logger in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_logger).addFilter(_NothingToActOn())
