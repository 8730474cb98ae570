"""The eager module of a checked ``.pt2``, built from litquant's own parse of it, without ``torch.export.load``.

:class:`~litquant.artifacts.pt2_file.Pt2Archive` has already parsed ``models/model.json`` and the tensor configs
into their strict schema (:mod:`litquant.artifacts.pt2_schema`). :func:`load_eager_module` builds from those parsed
values alone a ``torch.fx.GraphModule`` that computes what ``torch.export.load(file).module()`` computes: the
user inputs as placeholders, parameters, buffers and constants as attributes made from the raw tensor bytes
(dtype, sizes, strides and storage offset from the config), every node's operator resolved only among the
registered operators of :data:`~litquant.artifacts.pt2_schema.OPERATOR_NAMESPACES` and
:data:`~litquant.artifacts.pt2_schema.PYTHON_OPERATORS`, and the outputs in the program's own structure (a tensor,
a tuple, a dict). A pre-hook checks the inputs as the exported module does (their number, ranks, fixed sizes,
shared dynamic sizes and the program's guards). What a file can make it build is bounded: its tensors take at most
the archive's byte cap in all, its graph at most :data:`MAX_CALLS` call nodes. Then the same graph and description
checks as for :func:`~litquant.artifacts.pt2_file.load_program` run on it.

This path imports neither ``torch.export``'s deserializer nor TorchDynamo: it is what makes loading a ``.pt2`` for
one prediction fast. The ``compile`` and ``aot`` runners still need the ``ExportedProgram`` of ``load_program``.

Example::

    from litquant.artifacts.pt2_graph import load_eager_module

    module, description = load_eager_module("out/ptq.pt2")   # a checked torch.fx.GraphModule
    logits = module(images)
"""

from __future__ import annotations

import json
import keyword
import math
import operator
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from litquant.artifacts.description import ArtifactDescription
from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.files import MAX_TOTAL_BYTES, read_artifact_bytes
from litquant.artifacts.pt2_file import Pt2Archive, check_graph_module
from litquant.artifacts.pt2_inputs import RESERVED_INPUTS, UnloadableProgram, call_signature, input_check
from litquant.artifacts.pt2_schema import (
    MEMORY_FORMATS,
    OPERATOR_NAMESPACES,
    PYTHON_OPERATORS,
    SCALAR_TYPES,
    STRIDED_LAYOUT,
    registered_overload,
)
from litquant.artifacts.strict_json import MAX_ITEMS

__all__ = ["MAX_CALLS", "load_eager_module"]

_DTYPES = {code: getattr(torch, name) for code, name in SCALAR_TYPES.items()}
_MEMORY_FORMATS = {code: getattr(torch, name) for code, name in MEMORY_FORMATS.items()}
_PYTHON_FUNCTIONS: dict[str, Callable] = {name: getattr(operator, name.rsplit(".", 1)[1]) for name in PYTHON_OPERATORS}
#: The Python operators on sizes: torch reads their two inputs by position whatever their kind; ``getitem``'s must
#: be of kind 1 (positional).
_SIZE_OPERATORS = {"_operator.add", "_operator.sub", "_operator.mul", "_operator.floordiv"}
#: Most call nodes the eager module may have: as many as a program may list nodes (each result of a node with
#: several results is one more).
MAX_CALLS = MAX_ITEMS


def _dtype(code: int) -> torch.dtype:
    if code not in _DTYPES:
        raise UnloadableProgram(f"unknown scalar type {code}")
    return _DTYPES[code]


def _ints(values: list[dict], what: str) -> list[int]:
    if any("as_int" not in value for value in values):
        raise UnloadableProgram(f"{what} is symbolic")
    return [value["as_int"] for value in values]


def _tensor_io(meta: dict) -> tuple[list, str]:
    """A value's shape (``"batch"`` for a symbolic size) and dtype name, from its parsed ``tensor_values``."""
    return [d.get("as_int", "batch") for d in meta["sizes"]], \
        str(_dtype(meta["dtype"])).removeprefix("torch.")


# -- tensors ------------------------------------------------------------------------------------------------
class _Storages:
    """The flat storages of a parsed archive's tensors, made at most once per entry and together at most
    :data:`~litquant.artifacts.files.MAX_TOTAL_BYTES` (what the archive's entries may hold in all): an empty entry
    stands for zeros of its declared size, so a small file could otherwise ask for any number of large ones."""

    def __init__(self, entries: dict[str, bytes]) -> None:
        self.entries = entries
        self.bytes_left = MAX_TOTAL_BYTES

    def tensors(self, folder: str) -> dict[str, torch.Tensor]:
        """The tensors of a parsed weights or constants config by name, each a strided view of its entry's raw
        bytes (an entry shared by several names stays shared), as torch's loader makes them."""
        config = f"{folder}model_{folder.split('/')[1]}_config.json"
        if config not in self.entries:
            raise UnloadableProgram(f"no {config!r}")
        flat: dict[str, torch.Tensor] = {}
        tensors = {}
        for fqn, payload in json.loads(self.entries[config])["config"].items():
            meta = payload["tensor_meta"]
            if meta is None:
                raise UnloadableProgram(f"{fqn!r} has no tensor metadata")
            dtype, sizes = _dtype(meta["dtype"]), _ints(meta["sizes"], f"the size of {fqn!r}")
            name = payload["path_name"]
            if name not in flat:
                flat[name] = self._flat(fqn, self.entries[folder + name], dtype, sizes)
            tensor = torch.as_strided(flat[name], sizes, _ints(meta["strides"], f"the stride of {fqn!r}"),
                                      _ints([meta["storage_offset"]], f"the offset of {fqn!r}")[0])
            tensors[fqn] = nn.Parameter(tensor, requires_grad=meta["requires_grad"]) if payload["is_param"] \
                else tensor.requires_grad_(meta["requires_grad"])
        return tensors

    def _flat(self, fqn: str, data: bytes, dtype: torch.dtype, sizes: list[int]) -> torch.Tensor:
        """One entry's storage: a copy of its bytes, or (torch writes no bytes for an empty tensor, and reads
        zeros of its size) zeros of the sizes declared for it."""
        if any(size < 0 for size in sizes):
            raise UnloadableProgram(f"{fqn!r} has a negative size")
        nbytes = len(data) if data else math.prod(sizes) * dtype.itemsize
        if nbytes > self.bytes_left:
            raise UnloadableProgram(f"{fqn!r} would take the tensors past {MAX_TOTAL_BYTES // 2**20} MiB")
        self.bytes_left -= nbytes
        if not data:
            return torch.zeros(sizes, dtype=dtype)
        if len(data) % dtype.itemsize:
            raise UnloadableProgram(f"{fqn!r} holds {len(data)} bytes, not a whole number of {dtype}")
        flat = torch.empty(len(data) // dtype.itemsize, dtype=dtype)
        flat.view(torch.uint8).copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return flat


def _attach(root: nn.Module, fqn: str, tensor: torch.Tensor, kind: str, persistent: bool = True) -> None:
    """Register ``tensor`` on ``root`` at the dotted path ``fqn`` (plain modules in between)."""
    *prefix, field = fqn.split(".")
    module = root
    for item in prefix:
        child = module._modules.get(item)
        if child is None:
            child = nn.Module()
            module.add_module(item, child)
        module = child
    if kind == "parameter":
        module.register_parameter(field, tensor)
    elif kind == "buffer":
        module.register_buffer(field, tensor, persistent=persistent)
    elif hasattr(module, field):
        raise UnloadableProgram(f"constant {fqn!r} has the name of an attribute")
    else:
        setattr(module, field, tensor)


# -- the graph ----------------------------------------------------------------------------------------------
def _operator(target: str) -> Callable:
    """A node's operator, resolved only among the allowed ones (the schema has already checked the name)."""
    if target in _PYTHON_FUNCTIONS:
        return _PYTHON_FUNCTIONS[target]
    _, _, namespace, name, overload = target.split(".")
    resolved = registered_overload(namespace, name, overload) if namespace in OPERATOR_NAMESPACES else None
    if resolved is None:
        raise UnloadableProgram(f"{target!r} is not an allowed operator overload")
    return resolved


def _module_stack(text: str) -> dict[str, tuple[str, str]]:
    """``nn_module_stack`` as torch reads it, from the schema's parse: ``key,path,type`` entries joined by ``;``,
    three comma-free parts each (:func:`~litquant.artifacts.pt2_schema.canonical_program` refuses any other)."""
    return {key: (path, type_name) for key, path, type_name in (item.split(",") for item in text.split(";"))}


class _GraphBuilder:
    """The FX graph of a parsed program: its values by serialized name, its nodes in the program's order.

    Every value it names is one the program declares (``tensor_values``, ``sym_int_values``: as torch's
    deserializer reads their metadata), and it makes at most :data:`MAX_CALLS` call nodes (one per result of
    a node, for several results), so that the module stays within a size the program's metadata bounds."""

    def __init__(self, graph: dict) -> None:
        self.graph = fx.Graph()
        self.values: dict[str, fx.Node] = {}
        self.tensor_values = graph["tensor_values"]
        self.declared = graph["tensor_values"].keys() | graph["sym_int_values"].keys()
        self.calls = 0

    def bind(self, name: str, node: fx.Node) -> fx.Node:
        if name in self.values:
            raise UnloadableProgram(f"the graph makes {name!r} twice")
        if name not in self.declared:
            raise UnloadableProgram(f"the graph makes {name!r}, which it does not declare")
        self.values[name] = node
        return node

    def call(self, function: Callable, args: tuple, kwargs: dict | None = None, name: str | None = None) -> fx.Node:
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise UnloadableProgram(f"the graph makes more than {MAX_CALLS} calls")
        return self.graph.create_node("call_function", function, args, kwargs, name)

    def value(self, name: str) -> fx.Node:
        if name not in self.values:
            raise UnloadableProgram(f"the graph uses {name!r} before it is made")
        return self.values[name]

    def argument(self, argument: dict) -> Any:
        """A serialized argument as the Python value torch's deserializer makes of it."""
        (kind, value), = argument.items()
        if kind in ("as_none", "as_int", "as_ints", "as_bool", "as_bools", "as_string"):
            return None if kind == "as_none" else list(value) if isinstance(value, list) else value
        if kind in ("as_tensor", "as_tensors", "as_optional_tensors"):
            return self.value(value["name"]) if kind == "as_tensor" else \
                [None if "as_none" in v else self.value(v.get("as_tensor", v).get("name")) for v in value]
        if kind in ("as_sym_int", "as_sym_bool"):
            return self.value(value["as_name"]) if "as_name" in value else next(iter(value.values()))
        if kind == "as_sym_ints":
            return [self.argument({"as_sym_int": v}) for v in value]
        if kind in ("as_float", "as_floats"):
            floats = [{"Infinity": float("inf"), "-Infinity": float("-inf")}.get(v, v)
                      for v in (value if kind == "as_floats" else [value])]
            return floats if kind == "as_floats" else floats[0]
        if kind == "as_scalar_type":
            return _dtype(value)
        if kind == "as_memory_format" and value in _MEMORY_FORMATS:
            return _MEMORY_FORMATS[value]
        if kind == "as_layout" and value == STRIDED_LAYOUT:
            return torch.strided
        if kind == "as_device":
            return torch.device(value["type"], value["index"])
        raise UnloadableProgram(f"an argument {kind} {value!r}")  # as_optional_tensor: torch does not read it either

    def call_arguments(self, op: torch._ops.OpOverload, inputs: list[dict]) -> tuple[tuple, dict]:
        """Positional and keyword arguments ordered by the operator's schema, as torch's deserializer orders
        them (``kind`` 1: positional, 2: keyword; without a kind, by the schema's defaults)."""
        given = {i["name"]: self.argument(i["arg"]) for i in inputs}
        kinds = {i["name"]: i["kind"] for i in inputs}
        args, kwargs = [], {}
        for schema_arg in op._schema.arguments:
            name = schema_arg.name
            if name in given and kinds[name] == 1:
                args.append(given[name])
            elif name in given and kinds[name] == 2 and not keyword.iskeyword(name):
                kwargs[name] = given[name]
            elif not schema_arg.has_default_value() and not schema_arg.kwarg_only or keyword.iskeyword(name):
                if name not in given:
                    raise UnloadableProgram(f"{op} is called without {name!r}")
                args.append(given[name])
            elif name in given:
                kwargs[name] = given[name]
        return tuple(args), kwargs

    def node(self, node: dict) -> None:
        function, inputs, outputs = _operator(node["target"]), node["inputs"], node["outputs"]
        name = node["name"]
        if not isinstance(function, torch._ops.OpOverload):  # a Python operator: ``a + b``, ``a[b]``
            if len(inputs) != 2 or node["target"] not in _SIZE_OPERATORS and any(i["kind"] != 1 for i in inputs):
                raise UnloadableProgram(f"{node['target']} takes exactly two positional inputs")
            if node["target"] in _SIZE_OPERATORS:
                name = name or outputs and outputs[0].get("as_sym_int", {}).get("as_name") or None
            args, kwargs = tuple(self.argument(i["arg"]) for i in inputs), {}
        else:
            returns = function._schema.returns
            if not name and len(returns) == 1 and isinstance(returns[0].real_type, torch.TensorType) \
                    and outputs and "as_tensor" in outputs[0]:
                name = outputs[0]["as_tensor"]["name"]
            args, kwargs = self.call_arguments(function, inputs)
        made = self.call(function, args, kwargs, name)
        if "nn_module_stack" in node["metadata"]:
            made.meta["nn_module_stack"] = _module_stack(node["metadata"]["nn_module_stack"])
        if len(outputs) == 1 and ("as_tensor" in outputs[0] or "as_sym_int" in outputs[0]):
            (kind, value), = outputs[0].items()
            if kind == "as_tensor" or "as_name" in value:
                self.bind(value.get("name") or value["as_name"], made)
        elif len(outputs) == 1 and "as_tensors" in outputs[0] and outputs[0]["as_tensors"]:
            self.elements(made, [{"as_tensor": t} for t in outputs[0]["as_tensors"]])
        elif len(outputs) > 1:
            self.elements(made, outputs)
        elif outputs and "as_none" not in outputs[0]:
            raise UnloadableProgram(f"{made.target} returns {next(iter(outputs[0]))!r}")

    def elements(self, made: fx.Node, elements: list[dict]) -> None:
        """One ``getitem`` node per element of a node's several results (nested for a list)."""
        for index, element in enumerate(elements):
            (kind, value), = element.items()
            if kind not in ("as_tensor", "as_sym_int", "as_tensors", "as_none"):
                raise UnloadableProgram(f"{made.target} returns {kind!r}")
            name = value.get("name") or value.get("as_name") if isinstance(value, dict) else None
            item = self.call(operator.getitem, (made, index), name="as_none" if kind == "as_none" else name)
            item.meta.update(made.meta)
            if kind == "as_tensors":
                self.elements(item, [{"as_tensor": t} for t in value])
            elif name is not None:
                self.bind(name, item)


def _structure(spec: dict, leaves: list) -> Any:
    """The values of ``leaves`` in the shape of a parsed pytree spec (consumed from the front)."""
    children = [_structure(child, leaves) for child in spec["children_spec"]]
    if spec["type"] is None:
        if not leaves:
            raise UnloadableProgram("the output structure has more leaves than the graph has outputs")
        return leaves.pop(0)
    if spec["type"] == "builtins.dict":
        return dict(zip(json.loads(spec["context"]), children, strict=True))
    return tuple(children) if spec["type"] == "builtins.tuple" else children


def _spec_name(spec: dict) -> str:
    """The value an input or output spec names (a user input or output's argument is a union)."""
    return spec["arg"]["as_tensor"]["name"] if "as_tensor" in spec["arg"] else spec["arg"]["name"]


def _build(archive: Pt2Archive) -> tuple[fx.GraphModule, list, list]:
    """The module, its inputs ``("", shape, dtype)`` and outputs ``(shape, dtype)``, from the parsed archive."""
    program = json.loads(archive.entries["models/model.json"])
    graph, signature = program["graph_module"]["graph"], program["graph_module"]["signature"]
    storages = _Storages(archive.entries)
    tensors = {"weights": storages.tensors("data/weights/"), "constants": storages.tensors("data/constants/")}
    positional, keyword_names, out_spec = call_signature(program)
    builder, root, probe = _GraphBuilder(graph), nn.Module(), fx.GraphModule(nn.Module(), fx.Graph())
    if len(graph["inputs"]) != len(signature["input_specs"]) or len(graph["outputs"]) != len(
            signature["output_specs"]):
        raise UnloadableProgram("the graph's inputs or outputs and their specs differ in number")
    specs = [(value["as_tensor"]["name"], *next(iter(spec.items())))
             for value, spec in zip(graph["inputs"], signature["input_specs"], strict=True)]
    user = [name for name, kind, _ in specs if kind == "user_input"]
    names = user[:len(user) - len(keyword_names)] + keyword_names
    if any(name != _spec_name(body) for name, _, body in specs) or positional + len(keyword_names) != len(user) \
            or len(set(names)) != len(names) or set(names) & RESERVED_INPUTS:
        raise UnloadableProgram(f"inputs {user} do not match their specs or call signature, or use reserved names")
    for name, target in zip(user, names, strict=True):
        builder.bind(name, builder.graph.placeholder(target))
    for name, kind, body in (spec for spec in specs if spec[1] != "user_input"):
        fqn = body.get("parameter_name") or body.get("buffer_name") or body.get("tensor_constant_name")
        source = tensors["constants" if kind == "tensor_constant" or fqn not in tensors["weights"] else "weights"]
        if fqn not in source or hasattr(probe, fqn.split(".")[0]):
            raise UnloadableProgram(f"{kind} {fqn!r} is missing or has the name of a module attribute")
        _attach(root, fqn, source[fqn], kind, body.get("persistent", True))
        builder.bind(name, builder.graph.get_attr(fqn))
    for node in graph["nodes"]:
        builder.node(node)
    results = []
    for value, spec in zip(graph["outputs"], signature["output_specs"], strict=True):
        (kind, body), = spec.items()
        if kind != "user_output" or value["as_tensor"]["name"] != _spec_name(body):
            raise UnloadableProgram(f"output {value['as_tensor']['name']!r}: an update of a buffer, or not its spec's")
        results.append(builder.value(value["as_tensor"]["name"]))
    io_outputs = [_tensor_io(builder.tensor_values[value["as_tensor"]["name"]]) for value in graph["outputs"]]
    builder.graph.output(_structure(out_spec, results))
    if results:
        raise UnloadableProgram("the graph has more outputs than the output structure")
    module = fx.GraphModule(root, builder.graph)
    module.register_forward_pre_hook(input_check(program, names, [builder.tensor_values[name]["sizes"]
                                                                  for name in user]), with_kwargs=True)
    return module, [("", *_tensor_io(builder.tensor_values[name])) for name in user], io_outputs


def load_eager_module(path: str | os.PathLike, raw: bytes | None = None) -> tuple[fx.GraphModule,
                                                                                ArtifactDescription]:
    """The checked eager module and description of a ``.pt2`` (``raw``: its bytes, when already read), built from
    the archive's parsed program and raw tensors only.

    Raises:
        ArtifactError: not a ``.pt2``, a program this loader cannot build, or a model that does not match its
            description.
        UnsafeArtifactError: a file outside the allowlists (nothing of it was run).
    """
    path = Path(path)
    archive = Pt2Archive(path, read_artifact_bytes(path) if raw is None else raw)
    description = archive.description()
    import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the quantized_decomposed ops (not inductor)

    try:
        module, inputs, outputs = _build(archive)
    except (UnloadableProgram, AttributeError, KeyError, RuntimeError, TypeError, ValueError) as err:
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise ArtifactError(f"{path}: cannot load ({message}); export it again") from None
    check_graph_module(path, module, description, inputs, outputs)
    return module, description
