"""litquant: PyTorch Lightning on MNIST end to end, and fast int8 models from it."""

import contextlib
import logging
import warnings
from collections.abc import Iterator
from importlib.metadata import version

__version__ = version("litquant")

#: Warnings that libraries raise about their own internals, or about settings litquant chose for the user:
#: nothing a litquant user can act on. (Lightning's hint that a small training set has fewer batches than the
#: logging interval: litquant's tables and plots are per epoch; the model summary's size estimate under bf16;
#: torch.export reading weights saved as slices of one storage, which a CPU model reads whole; torchao's
#: quantizer leaving a max-pool in fp32 after a layer litquant left in fp32 (``--quant.fp32_layers``, ``--method
#: auto``), with its whole configuration, 1,500 characters, in the message.)
LIBRARY_INTERNAL_WARNINGS = [(r".*isinstance\(treespec, LeafSpec\)", FutureWarning),
                             (r"The number of training batches \(\d+\) is smaller than the logging interval", Warning),
                             (r"Precision \S+ is not supported by the model summary", UserWarning),
                             (r"No complete tensor found in the group", UserWarning),
                             (r"The input of maxpool2d is not quantized", UserWarning)]


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
    registering its enums with torch's pytree in the deprecated way, Lightning's advertisements for litlogger and
    litmodels, its note that no GPU or TPU is there (one that is still says so), its note that it reads the
    training data once to count the optimizer's steps (for the one-cycle schedule), and the ONNX exporter noting
    that torchvision (whose operators an MNIST model never uses) is missing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "torchao" and message.startswith("Failed to load"):
            import torch

            return torch.version.cuda is not None
        return not any(noise in message for noise in _NOISE)


_NOISE = ("is an Enum subclass and is now natively supported", "try installing [litlogger]",
          "try installing [litmodels]", "GPU available: False, used: False", "TPU available: False, using: 0",
          "torchvision is not installed. Skipping", "to estimate number of stepping batches")
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "lightning.pytorch.utilities.rank_zero",
                  "lightning.fabric.utilities.rank_zero", "torch.onnx._internal.exporter._registration")


def quiet_library_logs() -> None:
    """Install :class:`_NothingToActOn` on the loggers it concerns (the CLI does, at start; importing litquant
    changes no global state)."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _NothingToActOn) for existing in logger.filters):
            logger.addFilter(_NothingToActOn())


def quiet_libraries() -> None:
    """Keep what a program prints to what its user can act on, as the ``litquant`` command and the examples do
    at start (``--debug`` in the command skips it): :func:`ignore_library_internal_warnings`,
    :func:`quiet_library_logs`, and the warnings left printed as ``litquant: warning: Category: message``, without
    the path of the library file that raised them."""
    import sys

    ignore_library_internal_warnings()
    quiet_library_logs()

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        print(f"litquant: warning: {category.__name__}: {message}", file=file or sys.stderr)

    warnings.showwarning = show
