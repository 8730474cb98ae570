"""What a ``.onnx`` artifact may hold before ONNX Runtime sees it: tensors stored inside the file, and operators of
the standard domains, checked everywhere they can occur.

ONNX Runtime reads a tensor's ``external_data`` from a file named in the model (relative to the working folder
for a model given as bytes), wherever the tensor sits: a graph's initializers or sparse initializers, a node
attribute (``t``, ``tensors``, ``sparse_tensor``, ``sparse_tensors``), the sub-graphs of ``If``/``Loop``/``Scan``
at any depth, the body of a model-local function. :func:`unsafe_reason` walks all of them and allows:

* tensors whose data is in the file (no ``external_data`` entry, ``data_location`` not ``EXTERNAL``);
* nodes of the domains in :data:`STANDARD_DOMAINS` only (the ONNX operator set and ONNX-ML: what litquant's fp32
  export and ONNX Runtime's QDQ int8 quantization write). A node of any other domain (ONNX Runtime's contrib
  operators, a model-local function, a custom-op library's domain) is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["INT8_OPERATORS", "STANDARD_DOMAINS", "int8_operators", "unsafe_reason"]

#: Operator domains a node may use (``""`` and ``"ai.onnx"`` both name the standard operator set).
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
#: Standard operators that make a graph int8.
INT8_OPERATORS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                            "QLinearMatMul", "ConvInteger", "MatMulInteger"})


def _sparse(tensors: Any) -> Iterator[Any]:
    for sparse in tensors:
        yield sparse.values
        yield sparse.indices


def _graphs_and_tensors(model: Any) -> tuple[list[Any], list[Any]]:
    """Every node container (graphs at any depth, function bodies) and every tensor of ``model``."""
    containers: list[Any] = []
    tensors: list[Any] = []
    pending = [model.graph, *model.functions]
    while pending:
        container = pending.pop()
        containers.append(container)
        if hasattr(container, "initializer"):  # a graph; functions have no initializers
            tensors.extend(container.initializer)
            tensors.extend(_sparse(container.sparse_initializer))
        for node in container.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    tensors.append(attribute.t)
                tensors.extend(attribute.tensors)
                if attribute.HasField("sparse_tensor"):
                    tensors.extend(_sparse([attribute.sparse_tensor]))
                tensors.extend(_sparse(attribute.sparse_tensors))
                if attribute.HasField("g"):
                    pending.append(attribute.g)
                pending.extend(attribute.graphs)
    return containers, tensors


def unsafe_reason(model: Any) -> str | None:
    """Why ONNX Runtime could read beyond the file or run a non-standard operator for ``model`` (an
    ``onnx.ModelProto``); ``None`` when every tensor and node is allowed."""
    from onnx.external_data_helper import uses_external_data

    containers, tensors = _graphs_and_tensors(model)
    for tensor in tensors:
        if uses_external_data(tensor) or len(tensor.external_data):
            return f"tensor {tensor.name[:60]!r} reads external data"
    if model.functions:
        function = model.functions[0]
        return f"it defines its own function {function.domain[:60]!r}.{function.name[:60]!r}"
    for container in containers:
        for node in container.node:
            if node.domain not in STANDARD_DOMAINS:
                return f"node {node.name[:60]!r} uses operator domain {node.domain[:60]!r}, not a standard one"
    return None


def int8_operators(model: Any) -> list[str]:
    """The int8 operators ``model`` runs, anywhere in it."""
    containers, _ = _graphs_and_tensors(model)
    return sorted({node.op_type for c in containers for node in c.node if node.op_type in INT8_OPERATORS})
