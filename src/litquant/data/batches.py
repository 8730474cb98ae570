"""Labelled batches of any data module outside a ``Trainer``: ``(inputs, target)`` as the model sees them.

:class:`~litquant.data.MNISTDataModule` gives its normalised batches itself (``normalized_batches``). Any other
``LightningDataModule`` is read through its own loaders (``train_dataloader``, ``val_dataloader``,
``test_dataloader``), each batch passed through its ``on_before_batch_transfer``, ``transfer_batch_to_device`` and
``on_after_batch_transfer`` hooks as a ``Trainer`` would. Its batches must be ``(inputs, target)`` pairs: the
inputs a tensor, a tuple of positional inputs or a dict of keyword inputs (as the model's
``example_input_array``), the target the class indices.

Example::

    from litquant.data.batches import labelled_batches

    for inputs, target in labelled_batches(datamodule, "val", limit=4):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["BatchError", "batch_count", "labelled_batches", "sample_count"]

#: The loader method of each split.
_LOADERS = {"train": "train_dataloader", "val": "val_dataloader", "test": "test_dataloader"}


class BatchError(ValueError):
    """A data module whose batches are not ``(inputs, target)`` pairs, or that has no loader for a split."""


def labelled_batches(datamodule: Any, split: str, batch_size: int | None = None, limit: int | None = None,
                     shuffle: bool = False, seed: int | None = None,
                     device: torch.device | str = "cpu") -> Iterator[tuple[Any, torch.Tensor]]:
    """``(inputs, target)`` batches of ``split`` (``train``, ``val`` or ``test``), at most ``limit`` of them.

    ``batch_size``, ``shuffle`` and ``seed`` apply to a data module with ``normalized_batches`` (MNIST's); any other
    one gives its loaders' own batches, in their own order.

    Raises:
        BatchError: the data module has no loader for ``split``, or a batch is not an ``(inputs, target)`` pair.
    """
    if hasattr(datamodule, "normalized_batches"):
        yield from datamodule.normalized_batches(split, batch_size, limit, shuffle=shuffle, seed=seed, device=device)
        return
    name = type(datamodule).__name__
    loader = _loader(datamodule, split)
    for index, batch in enumerate(loader):
        if limit is not None and index >= limit:
            return
        batch = datamodule.on_before_batch_transfer(batch, 0)
        batch = datamodule.transfer_batch_to_device(batch, torch.device(device), 0)
        batch = datamodule.on_after_batch_transfer(batch, 0)
        if not isinstance(batch, (tuple, list)) or len(batch) != 2 or not isinstance(batch[1], torch.Tensor):
            raise BatchError(f"{name}'s {split} batches are {_shown(batch)}, not (inputs, target) pairs: give "
                             "batches of (inputs, class indices), the inputs as the model's example_input_array")
        yield batch[0], batch[1]


def batch_count(datamodule: Any, split: str) -> int | None:
    """How many batches a pass over ``split`` takes (``None`` when its loader does not say)."""
    if hasattr(datamodule, "normalized_batches"):
        return -(-len(datamodule.split(split)) // datamodule.batch_size)
    loader = _loader(datamodule, split)
    return len(loader) if hasattr(loader, "__len__") else None


def _loader(datamodule: Any, split: str) -> Any:
    """The data module's loader of ``split``.

    Raises:
        BatchError: it has none, or an empty one.
    """
    loader_method = getattr(datamodule, _LOADERS[split], None)
    try:
        loader = loader_method() if loader_method is not None else None
    except NotImplementedError:  # LightningDataModule's default for a loader not defined
        loader = None
    if loader is None or (hasattr(loader, "__len__") and len(loader) == 0):
        raise BatchError(f"{type(datamodule).__name__} has no {_LOADERS[split]}(): litquant quantize reads the "
                         f"{split} split through it")
    return loader


def sample_count(datamodule: Any, split: str, batch_size: int, limit: int | None) -> int:
    """How many samples ``labelled_batches(datamodule, split, batch_size, limit)`` gives."""
    if hasattr(datamodule, "split"):
        total = len(datamodule.split(split))
        return total if limit is None else min(total, limit * batch_size)
    return sum(len(target) for _, target in labelled_batches(datamodule, split, batch_size, limit))


def _shown(batch: Any) -> str:
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__}s of {len(batch)}"
    return f"{type(batch).__name__}s"
