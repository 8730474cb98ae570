"""A faster ``convert_pt2e`` for QAT graphs with batch norm: torchao's conv/batch-norm folding, unchanged, without
its repeated work.

torchao's ``_fold_conv_bn_qat`` builds its match and replacement patterns on every call by exporting small
Python functions with strict ``torch.export``: 24 exports per conv kind, for conv1d, conv2d, conv_transpose1d
and conv_transpose2d alike, whether or not the graph has such a conv (about a minute on 2 cores for every
conversion of a ResNet or MobileNet). :func:`faster_conv_bn_folding` skips the conv kinds the graph does not
have (no pattern of theirs can match) and exports each pattern once per process (a copy of it is handed out, so
the rewriting cannot change the cached one). The folding itself is torchao's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.fx import GraphModule
from torch.nn import functional as F

from litquant import library_internal_warnings_ignored

__all__ = ["faster_conv_bn_folding"]

_CONV_OPS = {
    F.conv1d: torch.ops.aten.conv1d,
    F.conv2d: torch.ops.aten.conv2d,
    F.conv_transpose1d: torch.ops.aten.conv_transpose1d,
    F.conv_transpose2d: torch.ops.aten.conv_transpose2d,
}
_PATTERNS: dict[Any, GraphModule] = {}


def _key(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device.type)
    if isinstance(value, (tuple, list)):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    return value


def _pattern_key(pattern: Callable, example_inputs: tuple, is_cuda: bool, kwargs: dict) -> Any:
    function = getattr(pattern, "fn", pattern)  # torchao wraps its pattern functions in a module
    cells = tuple(cell.cell_contents for cell in (function.__closure__ or ()))
    return function.__code__, cells, _key(example_inputs), is_cuda, _key(kwargs)


@contextlib.contextmanager
def faster_conv_bn_folding() -> Iterator[None]:
    """Within the block, torchao's QAT conv/batch-norm folding skips absent conv kinds and reuses its patterns."""
    from torchao.quantization.pt2e import qat_utils

    export_pattern, fold_helper = qat_utils._get_aten_graph_module_for_pattern, qat_utils._fold_conv_bn_qat_helper

    def cached_pattern(pattern: Callable, example_inputs: tuple, is_cuda: bool = False, **kwargs: Any) -> GraphModule:
        try:
            key = _pattern_key(pattern, example_inputs, is_cuda, kwargs)
            hash(key)
        except (AttributeError, TypeError, ValueError):  # a pattern this cache cannot key: exported as torchao does
            return export_pattern(pattern, example_inputs, is_cuda, **kwargs)
        if key not in _PATTERNS:
            _PATTERNS[key] = export_pattern(pattern, example_inputs, is_cuda, **kwargs)
        with library_internal_warnings_ignored():  # torch's pytree pickling warns about its own internals
            return copy.deepcopy(_PATTERNS[key])

    def present_kinds_only(m: GraphModule, conv_fn: Callable, example_inputs: tuple, is_cuda: bool) -> GraphModule:
        op = _CONV_OPS.get(conv_fn)
        if op is not None and not any(getattr(node.target, "overloadpacket", None) is op for node in m.graph.nodes):
            return m
        return fold_helper(m, conv_fn, example_inputs, is_cuda)

    qat_utils._get_aten_graph_module_for_pattern = cached_pattern
    qat_utils._fold_conv_bn_qat_helper = present_kinds_only
    try:
        yield
    finally:
        qat_utils._get_aten_graph_module_for_pattern = export_pattern
        qat_utils._fold_conv_bn_qat_helper = fold_helper
