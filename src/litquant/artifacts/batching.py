"""Running a model compiled for a few static batch sizes on any batch: padded up to the next size, larger inputs
in chunks of the largest. Inductor's int8 kernels do not support a dynamic batch, so both compiled runners
(``torch.compile``'s and AOTInductor's) run through :func:`run_padded`.

Example::

    from litquant.artifacts.batching import run_padded

    logits = run_padded(lambda size, x: compiled_for[size](x), (1, 8, 32), images)   # any number of images
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils import _pytree as pytree

__all__ = ["COMPILED_BATCH_SIZES", "run_padded"]

#: Batch sizes a compiled ``.pt2`` is specialised for by default.
COMPILED_BATCH_SIZES = (1, 8, 32, 64, 128, 256)


def _padded(tensor: torch.Tensor, start: int, length: int, size: int) -> torch.Tensor:
    """``length`` rows of ``tensor`` from ``start``, padded with zeros up to ``size`` rows."""
    chunk = tensor[start:start + length]
    return chunk if size == length else torch.cat([chunk, chunk.new_zeros(size - length, *chunk.shape[1:])])


def run_padded(call: Callable[..., Any], sizes: Sequence[int], *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
    """``call(size, *args, **kwargs)`` on the inputs cut into chunks of at most the largest of ``sizes`` rows, each
    padded with zeros up to the smallest of ``sizes`` that holds it; the outputs (a tensor, or a tuple or dict of
    them) have the padding rows dropped and the chunks joined again. ``sizes`` must be sorted."""
    count = len((*args, *kwargs.values())[0])
    outputs = []
    for start in range(0, max(count, 1), sizes[-1]):  # an empty input runs once, padded, for the output's shape
        length = min(sizes[-1], count - start)
        size = next(b for b in sizes if b >= length)
        output = call(size, *(_padded(t, start, length, size) for t in args),
                      **{k: _padded(t, start, length, size) for k, t in kwargs.items()})
        outputs.append(pytree.tree_map(lambda t, n=length: t[:n], output))
    if len(outputs) == 1:
        return outputs[0]
    leaves, specs = zip(*map(pytree.tree_flatten, outputs), strict=True)
    return pytree.tree_unflatten([torch.cat(parts) for parts in zip(*leaves, strict=True)], specs[0])
