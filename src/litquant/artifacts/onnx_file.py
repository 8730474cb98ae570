"""Reading a ``.onnx`` artifact safely and running it in ONNX Runtime, without PyTorch.

A ``.onnx`` file is protobuf data: its bytes are parsed once, every tensor and node at any depth is checked
(:mod:`litquant.artifacts.onnx_check`: no external data, standard operator domains, no local functions), the model's
inputs, outputs and int8 operators are checked against its embedded description, and the same bytes are handed to
ONNX Runtime, which runs no custom-op libraries.

Example::

    from pathlib import Path

    from litquant.artifacts.files import read_artifact_bytes
    from litquant.artifacts.onnx_file import onnx_runner

    path = Path("out/onnxruntime.int8.onnx")
    description, run = onnx_runner(path, read_artifact_bytes(path))
    logits = run(images)             # a numpy float32 array [N, 1, 28, 28] in, a numpy array out
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from litquant.artifacts.description import (
    ONNX_DESCRIPTION,
    ArtifactDescription,
    check_io,
    check_precision,
    description_mismatch,
    invalid_description,
)
from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.onnx_check import int8_operators, unsafe_reason

__all__ = ["GRAPH_OPTIMIZATION_LEVELS", "onnx_description", "onnx_io", "onnx_runner", "read_onnx"]

#: The ONNX Runtime graph optimisation levels a description may ask for (``onnxruntime.graph_optimization_level``).
GRAPH_OPTIMIZATION_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")


def read_onnx(path: Path, raw: bytes) -> onnx.ModelProto:
    """The model of the bytes ``raw`` of ``path``, parsed and checked by
    :func:`~litquant.artifacts.onnx_check.unsafe_reason`.

    Raises:
        ArtifactError: not an ONNX model.
        UnsafeArtifactError: external data, a non-standard operator domain or a local function.
    """
    try:
        proto = onnx.load_from_string(raw)
    except Exception as err:  # noqa: BLE001 - any parse failure: not an ONNX model
        raise ArtifactError(f"{path}: not an ONNX model ({type(err).__name__}); export it again") from None
    if why := unsafe_reason(proto):
        raise UnsafeArtifactError(f"{path}: refused to load, {why}; only load self-contained .onnx files of "
                                  "standard operators, as litquant writes them")
    return proto


def onnx_description(path: Path, proto: onnx.ModelProto) -> ArtifactDescription:
    """The description in the model's ``metadata_props``; :class:`ArtifactError` when there is none."""
    text = next((p.value for p in proto.metadata_props if p.key == ONNX_DESCRIPTION), None)
    if text is None:
        raise ArtifactError(f"{path}: no litquant description inside; make it with `litquant quantize` "
                            "(or litquant.artifacts.saving.save_onnx)")
    return ArtifactDescription.from_json(text)


def onnx_io(proto: onnx.ModelProto) -> tuple[list, list]:
    """The model's inputs ``(name, shape, dtype)`` (initializers left out) and outputs ``(shape, dtype)``,
    ``"batch"`` for symbolic dimensions."""
    def shape_and_type(value: Any) -> tuple[list, str]:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else "batch" for d in tensor.shape.dim]
        return shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name

    initializers = {t.name for t in proto.graph.initializer}
    inputs = [(v.name, *shape_and_type(v)) for v in proto.graph.input if v.name not in initializers]
    return inputs, [shape_and_type(v) for v in proto.graph.output]


def onnx_runner(path: Path, raw: bytes, threads: int | None = None) -> tuple[ArtifactDescription,
                                                                            Callable[[Any], Any]]:
    """The checked description of the ``.onnx`` bytes ``raw`` of ``path``, and a callable running the model in ONNX
    Runtime on its first input: a numpy array in gives the first output as a numpy array, a torch tensor in gives
    a torch tensor on the input's device. A model with several inputs or outputs (a description with a
    ``signature``) takes them all, positional and keyword, and returns all its outputs.

    Args:
        path: the file (for messages).
        raw: its bytes, as read once.
        threads: ONNX Runtime intra-op threads (``None``: its default).

    Raises:
        ArtifactError: not a valid artifact, a model that does not match its description, or one ONNX Runtime
            cannot load.
        UnsafeArtifactError: see :func:`read_onnx`.
    """
    import onnxruntime as ort

    proto = read_onnx(path, raw)
    description = onnx_description(path, proto)
    check_io(path, description, *onnx_io(proto))
    if why := check_precision(int8_operators(proto), description.precision):
        raise description_mismatch(path, why)
    options = ort.SessionOptions()
    # idle intra-op threads must not spin: beside PyTorch's OpenMP pool (report, bench, serve) a spinning pool
    # takes the cores PyTorch's threads wait for, and both run several times slower
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    level = description.extra.get("onnxruntime", {}).get("graph_optimization_level", "ORT_ENABLE_ALL")
    if level not in GRAPH_OPTIMIZATION_LEVELS:
        raise invalid_description(f"graph_optimization_level {level!r}")
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    try:
        session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise ArtifactError(f"{path}: ONNX Runtime cannot load it ({message}); export it again") from None
    name = session.get_inputs()[0].name
    signature = description.signature
    if signature is not None:
        return description, _signature_runner(session, signature)

    def run(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return session.run(None, {name: x.astype(np.float32, copy=False)})[0]
        import torch  # a tensor came in: its caller has imported torch already

        logits = session.run(None, {name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(logits).to(x.device)

    return description, run


def _signature_runner(session: Any, signature: Any) -> Callable[..., Any]:
    """A callable running a model of several inputs or outputs: positional inputs in order and keyword inputs by
    name in, the outputs as the signature says (a tuple, or a dict by name); numpy arrays in and out, or torch
    tensors (on the first input's device)."""
    names = [spec.name for spec in session.get_inputs()]
    output_names = [spec.name for spec in signature.outputs]

    def run(*args: Any, **kwargs: Any) -> Any:
        feeds = {**dict(zip(names, args, strict=False)), **kwargs}
        first = next(iter(feeds.values()))
        as_numpy = isinstance(first, np.ndarray)
        arrays = {key: value if as_numpy else value.detach().cpu().numpy() for key, value in feeds.items()}
        outputs = session.run(None, arrays)
        if not as_numpy:
            import torch  # a tensor came in: its caller has imported torch already

            outputs = [torch.from_numpy(output).to(first.device) for output in outputs]
        if signature.structure == "dict":
            return dict(zip(output_names, outputs, strict=True))
        return tuple(outputs) if signature.structure == "tuple" else outputs[0]

    return run
