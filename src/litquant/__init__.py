"""litquant: PyTorch Lightning on MNIST end to end, and fast int8 models from it."""

import logging

__version__ = "0.1.0"


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
