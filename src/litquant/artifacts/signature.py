"""The call signature of a model with several inputs or outputs: every input (name, dtype, shape with a symbolic
batch, positional or keyword), every output (name, dtype, shape), how the outputs are returned (one tensor, a
tuple, a dict) and which output is the class logits.

An artifact's description holds it as ``"signature"`` (:class:`Signature`, parsed by :meth:`Signature.from_dict`
into exactly these fields); an artifact without one (a single image input, one logits output) is described by its
``input``/``output`` entries alone. :func:`program_signature` reads it from a ``torch.export`` program, so what a
file says about its model is what the model is.

Example::

    from litquant.artifacts.signature import program_signature

    signature = program_signature(program)              # a torch.export.ExportedProgram
    [(spec.name, spec.shape, spec.keyword) for spec in signature.inputs]
    # [('image', ('batch', 1, 28, 28), False), ('rows', ('batch', 28), True)]
    signature.logits_index                                # where the class logits are among the outputs
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

__all__ = ["OUTPUT_STRUCTURES", "Signature", "SignatureError", "TensorSpec", "check_signature", "flat_outputs",
           "program_signature", "value_dtype", "value_shape"]

#: How a model returns its outputs.
OutputStructure = Literal["tensor", "tuple", "dict"]
OUTPUT_STRUCTURES: tuple[str, ...] = get_args(OutputStructure)
#: The dtypes an input or output may have.
_DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "bool")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
_MAX_TENSORS = 64


class SignatureError(ValueError):
    """A signature that is not one litquant writes."""


def _shape(value: Any, what: str) -> tuple[str | int, ...]:
    if (not isinstance(value, (list, tuple)) or not value or value[0] != "batch" or len(value) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**31 for d in value[1:])):
        raise SignatureError(f"{what} shape {value!r} is not ['batch', positive sizes...]")
    return ("batch", *(int(d) for d in value[1:]))


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, shape (``"batch"`` first) and dtype; ``keyword``: an input passed by name."""

    name: str
    shape: tuple[str | int, ...]
    dtype: str = "float32"
    keyword: bool = False

    def to_dict(self, *, is_input: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        return {**data, "keyword": self.keyword} if is_input else data

    @classmethod
    def from_dict(cls, data: Any, what: str, *, is_input: bool) -> TensorSpec:
        if not isinstance(data, Mapping):
            raise SignatureError(f"{what} is not an object")
        name, dtype, keyword = data.get("name"), data.get("dtype"), data.get("keyword", False) if is_input else False
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SignatureError(f"{what} name {name!r} is not an identifier")
        if dtype not in _DTYPES:
            raise SignatureError(f"{what} dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
        if not isinstance(keyword, bool):
            raise SignatureError(f"{what} keyword {keyword!r} is not true or false")
        return cls(str(name), _shape(data.get("shape"), what), str(dtype), bool(keyword))


@dataclasses.dataclass(frozen=True)
class Signature:
    """Every input and output of a model, how the outputs are returned, and which one is the class logits."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    structure: OutputStructure = "tensor"
    logits: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs or not self.outputs:
            raise SignatureError("a signature needs at least one input and one output")
        for what, specs in (("input", self.inputs), ("output", self.outputs)):
            names = [spec.name for spec in specs]
            if len(set(names)) != len(names):
                raise SignatureError(f"{what} names {names} are not distinct")
        if self.structure not in OUTPUT_STRUCTURES:
            raise SignatureError(f"output structure {self.structure!r} is not one of {', '.join(OUTPUT_STRUCTURES)}")
        if self.structure == "tensor" and len(self.outputs) != 1:
            raise SignatureError(f"one tensor output, but {len(self.outputs)} outputs are described")
        if self.logits is not None and self.logits not in [spec.name for spec in self.outputs]:
            raise SignatureError(f"the logits output {self.logits!r} is not one of the outputs")

    @property
    def logits_index(self) -> int | None:
        """The position of the class logits among :attr:`outputs` (``None``: none named)."""
        names = [spec.name for spec in self.outputs]
        return None if self.logits is None else names.index(self.logits)

    @property
    def positional(self) -> tuple[TensorSpec, ...]:
        return tuple(spec for spec in self.inputs if not spec.keyword)

    @property
    def keywords(self) -> tuple[TensorSpec, ...]:
        return tuple(spec for spec in self.inputs if spec.keyword)

    def with_logits(self, logits: str | int | None) -> Signature:
        """This signature with the class logits named (an output's name or position)."""
        if isinstance(logits, int):
            if not -len(self.outputs) <= logits < len(self.outputs):
                raise SignatureError(f"output {logits} does not exist: the model has {len(self.outputs)} outputs")
            logits = self.outputs[logits].name
        return dataclasses.replace(self, logits=logits)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [spec.to_dict(is_input=True) for spec in self.inputs],
                "outputs": [spec.to_dict(is_input=False) for spec in self.outputs],
                "structure": self.structure, "logits": self.logits}

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        if not isinstance(data, Mapping):
            raise SignatureError("'signature' is not an object")
        specs = {}
        for key in ("inputs", "outputs"):
            value = data.get(key)
            if not isinstance(value, list) or not 0 < len(value) <= _MAX_TENSORS:
                raise SignatureError(f"signature {key} is not a list of 1 to {_MAX_TENSORS} tensors")
            specs[key] = tuple(TensorSpec.from_dict(item, f"{key[:-1]} {i}", is_input=key == "inputs")
                               for i, item in enumerate(value))
        logits = data.get("logits")
        if logits is not None and not isinstance(logits, str):
            raise SignatureError(f"signature logits {logits!r} is not an output name")
        structure = data.get("structure")
        if structure not in OUTPUT_STRUCTURES:
            raise SignatureError(f"output structure {structure!r} is not one of {', '.join(OUTPUT_STRUCTURES)}")
        return cls(specs["inputs"], specs["outputs"], structure, logits)


def value_dtype(value: Any) -> str:
    """The dtype of a traced value (a tensor's ``meta["val"]``) as a name: ``float32``."""
    return str(getattr(value, "dtype", None)).removeprefix("torch.")


def value_shape(value: Any) -> tuple[str | int, ...]:
    """The shape of a traced value, ``"batch"`` for each symbolic dimension."""
    return tuple(int(d) if isinstance(d, int) else "batch" for d in getattr(value, "shape", ()))


def program_signature(program: torch.export.ExportedProgram, logits: str | int | None = None) -> Signature:
    """The signature of an exported program: its user inputs (keyword ones as the program was called with
    them), its outputs named by their dict keys (``output_0``, ``output_1``... for a tuple, ``logits`` for one
    tensor); ``logits`` names the class-logits output (name or position; a single output is the logits)."""
    import torch

    nodes = {node.name: node for node in program.graph.nodes}
    user = [spec for spec in program.graph_signature.input_specs
            if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT]
    in_spec = program.call_spec.in_spec
    keyword_names: list[str] = []
    if in_spec is not None and in_spec.num_children == 2:  # (args, kwargs)
        keyword_names = list(in_spec.child(1).context or [])
    positional_count = len(user) - len(keyword_names)
    inputs = []
    for index, spec in enumerate(user):
        value = nodes[spec.arg.name].meta.get("val")
        keyword = index >= positional_count
        name = keyword_names[index - positional_count] if keyword else spec.arg.name
        inputs.append(TensorSpec(name, value_shape(value), value_dtype(value), keyword))
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    values = [arg.meta.get("val") for arg in output_node.args[0] if isinstance(arg, torch.fx.Node)]
    out_spec = program.call_spec.out_spec
    container = getattr(out_spec, "type", None)
    structure: OutputStructure = "tensor"
    names = ["logits"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
    if container is dict:
        structure, names = "dict", [str(key) for key in out_spec.context]
    elif container in (tuple, list):
        structure, names = "tuple", [f"output_{i}" for i in range(len(values))]
    outputs = tuple(TensorSpec(name, value_shape(value), value_dtype(value))
                    for name, value in zip(names, values, strict=True))
    if logits is None and len(outputs) == 1:
        logits = 0
    elif logits is None and structure == "dict" and "logits" in names:
        logits = "logits"
    return Signature(tuple(inputs), outputs, structure).with_logits(logits)


def flat_outputs(output: Any) -> list[torch.Tensor]:
    """A model's output as the list of its tensors (or arrays) in the signature's order (dict: insertion order)."""
    if hasattr(output, "shape") and hasattr(output, "dtype"):  # a tensor, or an ONNX Runtime output array
        return [output]
    if isinstance(output, Mapping):
        return list(output.values())
    if isinstance(output, Sequence):
        return list(output)
    raise SignatureError(f"a model output must be a tensor, a tuple or a dict of tensors, got {type(output).__name__}")


def check_signature(signature: Signature, inputs: list[tuple[str, list, str]],
                    outputs: list[tuple[list, str]]) -> str | None:
    """What differs between ``signature`` and a model's inputs ``(name, shape, dtype)`` and outputs
    ``(shape, dtype)`` (dimension 0 is the batch; names compared where the model has them); ``None``: nothing."""
    def shown(specs: Sequence[tuple[list, str]]) -> list[str]:
        return [f"{dtype} {['batch', *shape[1:]]}" for shape, dtype in specs]

    found_inputs = [(list(shape), dtype) for _, shape, dtype in inputs]
    described_inputs = [(list(spec.shape), spec.dtype) for spec in signature.inputs]
    if [(s[1:], d) for s, d in found_inputs] != [(s[1:], d) for s, d in described_inputs]:
        return f"inputs {shown(found_inputs)}, described {shown(described_inputs)}"
    names = [spec.name for spec in signature.inputs]
    if any(name and name not in names for name, _, _ in inputs):
        return f"inputs {[name for name, _, _ in inputs]}, described {names}"
    described_outputs = [(list(spec.shape), spec.dtype) for spec in signature.outputs]
    if [(list(s[1:]), d) for s, d in outputs] != [(s[1:], d) for s, d in described_outputs]:
        return f"outputs {shown(outputs)}, described {shown(described_outputs)}"
    return None
