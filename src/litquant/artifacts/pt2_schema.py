"""The strict schema of a ``.pt2`` program (``models/model.json``) and of its tensor configs: parse, then rebuild.

``torch.export.load`` turns parts of ``model.json`` into code: it ``exec``\\ s the ``guards_code`` strings into the
unlifted module's guard function (run on every call), resolves every node ``target`` string to a Python object,
writes graph, node, sub-module and argument names into the Python source FX generates (sub-graphs of higher-order
operators become sub-modules named from the file), and evaluates symbolic shapes with ``sympy.sympify``. So
nothing is checked against a list of known attacks: :func:`canonical_program` parses the JSON into the fields
litquant's artifacts use, each with a type and a range, refuses any other field or value, and returns a **new**
JSON document written from the parsed values only. That document, not the file's, reaches torch. Allowed:

* node targets: registered operator overloads (``torch.ops.<namespace>.<op>.<overload>``, resolved against the
  operator registry) of the namespaces in :data:`OPERATOR_NAMESPACES`, plus the few Python operators an export
  writes for symbolic sizes (:data:`PYTHON_OPERATORS`); never a higher-order operator, sub-graph or custom object;
* names: plain ASCII identifiers (``[A-Za-z_][A-Za-z0-9_]*``, at most 200 characters, no Python
  keyword) for graph values, nodes and arguments; dotted paths of such names (and sequence indices) for
  parameters, buffers and sub-modules;
* ``guards_code`` (Python that torch ``exec``\\ s): only comparisons of input sizes such as
  ``L['x'].size()[0] == L['y'].size()[0]`` (several inputs sharing a dynamic batch), matched whole;
* graph-module metadata empty, no named tuples;
* symbolic shapes from a small grammar: ``Symbol('s0', integer=True, ...)``, ``Integer(n)``, ``Add``, ``Mul``,
  ``FloorDiv``, ``Min``, ``Max`` (no powers), at most :data:`MAX_EXPRESSION` characters, rebuilt from the parse;
* integers within int64, floats within float32's range (or infinite), lists of bounded length, string arguments
  only for the parameters in :data:`STRING_ARGUMENTS`;
* of node metadata, only the module path (``nn_module_stack``) is kept, parsed; stack traces and the rest are
  dropped.

This is an allowlist of operator *namespaces*, not of the operators the MNIST model happens to use: any model
whose export stays within registered ``aten``/``quantized_decomposed``/``onednn`` operators loads (residual adds,
hardswish, layer norm, attention, several inputs and tuple or dict outputs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from litquant.artifacts.strict_json import (
    NAME,
    Parser,
    SchemaError,
    boolean,
    bounded,
    empty_list,
    empty_map,
    fail,
    integer,
    list_of,
    load_json,
    map_of,
    name,
    null,
    number,
    one_of,
    optional,
    path,
    record,
    shown,
    string,
    union,
)

__all__ = ["MAX_EXPRESSION", "MEMORY_FORMATS", "OPERATOR_NAMESPACES", "PYTHON_OPERATORS", "SCALAR_TYPES",
           "STRIDED_LAYOUT", "STRING_ARGUMENTS", "SchemaError", "canonical_program", "canonical_tensor_config",
           "expression", "int8_targets", "registered_overload"]

#: Namespaces whose registered operator overloads a graph may call: ATen, the quantize/dequantize operators of
#: PT2E quantization, and the oneDNN int8 operators inductor lowers them to. Higher-order operators live in
#: ``torch.ops.higher_order`` and are not among them.
OPERATOR_NAMESPACES = frozenset({"aten", "quantized_decomposed", "onednn"})
#: Python operators an export writes for symbolic sizes and for picking one output of a multi-output operator.
PYTHON_OPERATORS = frozenset({"_operator.getitem", "_operator.add", "_operator.sub", "_operator.mul",
                              "_operator.floordiv"})
#: Operator parameters that may take a string: ATen's enumerations spelled as short words (``approximate="tanh"``,
#: ``rounding_mode="floor"``, an ``einsum`` equation); any other parameter given a string is refused.
STRING_ARGUMENTS = frozenset({"approximate", "rounding_mode", "padding", "mode", "padding_mode", "reduce",
                              "reduction", "side", "indexing", "interpolation", "equation"})
MAX_EXPRESSION = 2_000
_WORD = re.compile(r"[A-Za-z0-9_,.>\- ]{0,64}")
_SYMBOL = re.compile(r"[a-z]+\d+")
_TYPE_NAME = re.compile(r"[A-Za-z0-9_.<>]{1,400}")
_MODULE_PATH = re.compile(r"[A-Za-z0-9_.@\[\]']{0,400}")


# -- symbolic shapes ----------------------------------------------------------------------------------------
_EXPRESSION_TOKEN = re.compile(r"\s*(?:([A-Za-z]+)|(-?\d{1,19})|('[a-z]+\d+')|([(),=]))")
#: The functions of a shape expression and how many terms each takes (``Symbol`` and ``Integer`` are its leaves).
_FUNCTIONS = {"Add": (2, 64), "Mul": (2, 64), "FloorDiv": (2, 2), "Min": (2, 64), "Max": (2, 64)}
_ASSUMPTIONS = ("positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite")


def expression(value: Any, where: str) -> str:
    """A symbolic size in the grammar of the module docstring, rebuilt from its parse (sympy's own notation)."""
    if not isinstance(value, str) or len(value) > MAX_EXPRESSION:
        raise fail(where, f"{shown(value)} is not a shape expression of at most {MAX_EXPRESSION} characters")
    tokens = []
    position = 0
    while position < len(value.rstrip()):
        token = _EXPRESSION_TOKEN.match(value, position)
        if token is None:
            raise fail(where, f"{shown(value)} is not plain arithmetic (+ - * // min max of sizes)")
        tokens.append(next(t for t in token.groups() if t is not None))
        position = token.end()
    tokens.reverse()

    def take(expected: str | None = None) -> str:
        if not tokens or (expected is not None and tokens[-1] != expected):
            raise fail(where, f"{shown(value)} is not plain arithmetic (+ - * // min max of sizes)")
        return tokens.pop()

    def term(depth: int) -> str:
        if depth > 32:
            raise fail(where, f"{shown(value)} nests too deeply")
        head = take()
        take("(")
        if head == "Symbol":
            symbol = take()
            if not _SYMBOL.fullmatch(symbol.strip("'")) or not symbol.startswith("'"):
                raise fail(where, f"{shown(value)} names a symbol that is not like 's0'")
            flags = []
            while tokens and tokens[-1] == ",":
                take(",")
                flag = take()
                take("=")
                setting = take()
                if flag not in _ASSUMPTIONS or setting not in ("True", "False"):
                    raise fail(where, f"{shown(value)} has an unknown symbol assumption")
                flags.append(f"{flag}={setting}")
            take(")")
            return f"Symbol({', '.join([symbol, *flags])})"
        if head == "Integer":
            digits = take()
            if not re.fullmatch(r"-?\d+", digits):
                raise fail(where, f"{shown(value)} is not plain arithmetic")
            take(")")
            return f"Integer({integer(int(digits), where)})"
        if head not in _FUNCTIONS:
            raise fail(where, f"{shown(value)} uses {head!r}; only Add, Mul, FloorDiv, Min, Max of sizes")
        low, high = _FUNCTIONS[head]
        arguments = [term(depth + 1)]
        while tokens and tokens[-1] == ",":
            take(",")
            arguments.append(term(depth + 1))
        take(")")
        if not low <= len(arguments) <= high:
            raise fail(where, f"{shown(value)}: {head} takes {low} to {high} terms")
        return f"{head}({', '.join(arguments)})"

    rebuilt = term(0)
    if tokens:
        raise fail(where, f"{shown(value)} is not plain arithmetic")
    return rebuilt


_HINT = union({"as_int": integer})
_SYM_EXPR = record({"expr_str": expression}, {"hint": (optional(_HINT), None)})
_SYM_INT = union({"as_int": integer, "as_expr": _SYM_EXPR})
_SYM_BOOL = union({"as_bool": boolean, "as_expr": _SYM_EXPR})
_RANGE = record({"min_val": optional(integer), "max_val": optional(integer)})


# -- tensors and arguments ----------------------------------------------------------------------------------
#: The codes of ``torch.export``'s serialized enumerations (part of the file format, ``torch._export.serde.schema``;
#: written out here because importing that module costs start-up time): scalar types by the name of their
#: ``torch`` dtype, memory formats by the name of their ``torch`` constant, the strided layout. Code 0 of the first
#: two is "unknown": it parses, and no loader builds a tensor of it.
SCALAR_TYPES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
                8: "float64", 9: "complex32", 10: "complex64", 11: "complex128", 12: "bool", 13: "bfloat16",
                28: "uint16", 29: "float8_e4m3fn", 30: "float8_e5m2", 31: "float8_e4m3fnuz", 32: "float8_e5m2fnuz",
                33: "float8_e8m0fnu", 34: "uint32", 35: "uint64"}
MEMORY_FORMATS = {1: "contiguous_format", 2: "channels_last", 3: "channels_last_3d", 4: "preserve_format"}
STRIDED_LAYOUT = 7
_SCALAR_TYPE, _MEMORY_FORMAT = one_of(0, *SCALAR_TYPES), one_of(0, *MEMORY_FORMATS)
_STRIDED = one_of(STRIDED_LAYOUT)
_DEVICE = record({"type": one_of("cpu")}, {"index": (optional(bounded(0, 1024)), None)})
_DIMENSIONS = list_of(_SYM_INT, 64)
TENSOR_META = record({"dtype": _SCALAR_TYPE, "sizes": _DIMENSIONS, "requires_grad": boolean, "device": _DEVICE,
                       "strides": _DIMENSIONS, "storage_offset": _SYM_INT, "layout": _STRIDED})
_TENSOR = record({"name": name})
_SYM_INT_ARGUMENT = union({"as_name": name, "as_int": integer})
_SYM_BOOL_ARGUMENT = union({"as_name": name, "as_bool": boolean})
_OPTIONAL_TENSOR = union({"as_tensor": _TENSOR, "as_none": one_of(True)})


def _word(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise fail(where, f"{shown(value)} is not a short word")
    return value


_ARGUMENT_KINDS: dict[str, Parser] = {
    "as_none": one_of(True), "as_tensor": _TENSOR, "as_tensors": list_of(_TENSOR), "as_int": integer,
    "as_ints": list_of(integer, 1024), "as_float": number, "as_floats": list_of(number, 1024), "as_bool": boolean,
    "as_bools": list_of(boolean, 1024), "as_sym_int": _SYM_INT_ARGUMENT, "as_sym_ints": list_of(_SYM_INT_ARGUMENT, 64),
    "as_sym_bool": _SYM_BOOL_ARGUMENT, "as_scalar_type": _SCALAR_TYPE, "as_memory_format": _MEMORY_FORMAT,
    "as_layout": _STRIDED, "as_device": _DEVICE, "as_optional_tensors": list_of(_OPTIONAL_TENSOR),
    "as_optional_tensor": _OPTIONAL_TENSOR, "as_string": _word}
_ARGUMENT = union(_ARGUMENT_KINDS)
_OUTPUT = union({"as_tensor": _TENSOR, "as_tensors": list_of(_TENSOR), "as_sym_int": _SYM_INT_ARGUMENT,
                  "as_none": one_of(True), "as_optional_tensors": list_of(_OPTIONAL_TENSOR)})
_VALUE = union({"as_tensor": _TENSOR})  # graph inputs and outputs: tensors


def _named_argument(value: Any, where: str) -> dict:
    parsed = record({"name": name, "arg": _ARGUMENT}, {"kind": (optional(one_of(1, 2)), None)})(value, where)
    if "as_string" in parsed["arg"] and parsed["name"] not in STRING_ARGUMENTS:
        raise fail(where, f"parameter {parsed['name']!r} may not take a string")
    return parsed


# -- operators ----------------------------------------------------------------------------------------------
def registered_overload(namespace: str, op: str, overload: str) -> Any:
    """``torch.ops.<namespace>.<op>.<overload>`` when it is a registered operator overload (never a higher-order
    operator); ``None`` otherwise. The caller checks the namespace."""
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the quantized_decomposed ops (not inductor)

    try:
        resolved = getattr(getattr(getattr(torch.ops, namespace), op), overload)
    except (AttributeError, RuntimeError):
        return None
    if not isinstance(resolved, torch._ops.OpOverload) or isinstance(resolved, torch._ops.HigherOrderOperator):
        return None
    return resolved


def target(value: Any, where: str) -> str:
    """A node target: a registered operator overload of an allowed namespace, or a listed Python operator."""
    if isinstance(value, str) and value in PYTHON_OPERATORS:
        return value
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 5 or parts[:2] != ["torch", "ops"] or parts[2] not in OPERATOR_NAMESPACES \
            or not all(NAME.fullmatch(p) and not p.startswith("__") for p in parts[3:]):
        raise fail(where, f"{shown(value)} is not an operator of {sorted(OPERATOR_NAMESPACES)}")
    if registered_overload(*parts[2:]) is None:
        raise fail(where, f"{shown(value)} is not a registered operator overload")
    return value


def _module_stack(value: Any, where: str) -> str:
    """``nn_module_stack``: ``key,path,type`` entries joined by ``;`` (the module paths the int8 report shows)."""
    entries = value.split(";") if isinstance(value, str) and len(value) <= 20_000 else [None]
    for entry in entries:
        parts = entry.split(",") if isinstance(entry, str) else []
        if len(parts) != 3 or not (_MODULE_PATH.fullmatch(parts[0]) and _MODULE_PATH.fullmatch(parts[1])
                                   and _TYPE_NAME.fullmatch(parts[2])) or parts[1].count("[") != parts[1].count("]"):
            raise fail(where, f"{shown(entry)} is not 'key,module path,type name'")
    return value


def _node_metadata(value: Any, where: str) -> dict:
    """What is kept of a node's metadata: the module path only (stack traces and the rest are dropped)."""
    parsed = map_of(name, string)(value, where)
    return {"nn_module_stack": _module_stack(parsed["nn_module_stack"], f"{where}.nn_module_stack")} \
        if "nn_module_stack" in parsed else {}


_NODE = record({"target": target, "inputs": list_of(_named_argument, 1024), "outputs": list_of(_OUTPUT, 1024),
                 "metadata": _node_metadata},
                {"is_hop_single_tensor_return": (null, None), "name": (optional(name), None)})
_GRAPH = record({"inputs": list_of(_VALUE), "outputs": list_of(_VALUE), "nodes": list_of(_NODE),
                  "tensor_values": map_of(name, TENSOR_META), "sym_int_values": map_of(name, _SYM_INT),
                  "sym_bool_values": map_of(name, _SYM_BOOL)},
                 {"is_single_tensor_return": (boolean, False), "custom_obj_values": (empty_map, {}),
                  "sym_float_values": (empty_map, {})})
_INPUT_SPEC = union({
    "user_input": record({"arg": _VALUE}),
    "parameter": record({"arg": _TENSOR, "parameter_name": path}),
    "buffer": record({"arg": _TENSOR, "buffer_name": path, "persistent": boolean}),
    "tensor_constant": record({"arg": _TENSOR, "tensor_constant_name": path})})
_OUTPUT_SPEC = union({"user_output": record({"arg": _VALUE}),
                       "buffer_mutation": record({"arg": _TENSOR, "buffer_name": path})})


# -- the call signature: pytree specs -----------------------------------------------------------------------
_CONTAINERS = ("builtins.tuple", "builtins.list", "builtins.dict")


def _tree(value: Any, where: str, depth: int = 0) -> dict:
    """One node of a pytree spec: a leaf, or a tuple, list or dict (string keys) of nodes."""
    spec = record({"type": optional(one_of(*_CONTAINERS)), "context": optional(string),
                    "children_spec": list_of(lambda v, w: v, 1024)})(value, where)
    if depth > 16:
        raise fail(where, "nests too deeply")
    kind, children = spec["type"], spec["children_spec"]
    if kind is None:
        if spec["context"] is not None or children:
            raise fail(where, "a leaf with a context or children")
        return {"type": None, "context": None, "children_spec": []}
    if kind == "builtins.dict":
        try:
            keys = json.loads(spec["context"] or "")
        except ValueError:
            raise fail(where, "dict keys are not JSON") from None
        keys = list_of(name, 1024)(keys, f"{where}.context")
        if len(keys) != len(children):
            raise fail(where, "dict keys and children differ in number")
        context = json.dumps(keys)
    elif spec["context"] != "null":
        raise fail(where, f"{kind} with a context")
    else:
        context = "null"
    return {"type": kind, "context": context,
            "children_spec": [_tree(c, f"{where}.children_spec[{i}]", depth + 1) for i, c in enumerate(children)]}


def _treespec(value: Any, where: str) -> str:
    try:
        version, root = json.loads(string(value, where))
    except (ValueError, TypeError):
        raise fail(where, "not a pytree spec") from None
    one_of(1)(version, where)
    return json.dumps([1, _tree(root, where)])


_CALL_SIGNATURE = record({"inputs": empty_list, "outputs": empty_list, "in_spec": _treespec,
                           "out_spec": _treespec},
                          {"forward_arg_names": (optional(list_of(name, 1024)), None)})
_MODULE_CALL = record({"fqn": path}, {"signature": (optional(_CALL_SIGNATURE), None)})
_GRAPH_MODULE = record({"graph": _GRAPH,
                         "signature": record({"input_specs": list_of(_INPUT_SPEC),
                                              "output_specs": list_of(_OUTPUT_SPEC)}),
                         "module_call_graph": list_of(_MODULE_CALL, 10_000)},
                        {"metadata": (empty_map, {}), "treespec_namedtuple_fields": (empty_map, {})})
_VERSION = bounded(0, 10_000)
_INPUT_SIZE = r"L\['[A-Za-z_][A-Za-z0-9_]{0,199}'\](?:\[\d{1,4}\])*\.size\(\)\[\d{1,2}\]"
_GUARD = re.compile(rf"(?:{_INPUT_SIZE}|\d{{1,18}}) (?:==|!=|<=|>=|<|>) (?:{_INPUT_SIZE}|\d{{1,18}})")


def _guard(value: Any, where: str) -> str:
    """A guard torch compiles into the unlifted module: one comparison of two input sizes or a size and a number
    (``L['x'].size()[0] == L['y'].size()[0]``, what a shared dynamic batch of several inputs needs), nothing else."""
    if not (isinstance(value, str) and _GUARD.fullmatch(value)):
        raise fail(where, f"{shown(value)} is not a comparison of input sizes")
    return value


def _symbol(value: Any, where: str) -> str:
    if not (isinstance(value, str) and len(value) <= 20 and _SYMBOL.fullmatch(value)):
        raise fail(where, f"{shown(value)} is not a size symbol like 's0'")
    return value


def _version_string(value: Any, where: str) -> str:
    if not (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9.+_<=-]{1,40}", value)):
        raise fail(where, f"{shown(value)} is not a version")
    return value


_PROGRAM = record({"graph_module": _GRAPH_MODULE, "opset_version": map_of(name, _VERSION, 64),
                    "range_constraints": map_of(_symbol, _RANGE, 10_000),
                    "schema_version": record({"major": _VERSION, "minor": _VERSION})},
                   {"verifiers": (list_of(one_of("ATEN", "TRAINING"), 4), []),
                    "torch_version": (_version_string, "<=2.4"),
                    "guards_code": (list_of(_guard, 1024), [])})


# -- entry points -------------------------------------------------------------------------------------------
def canonical_program(data: bytes) -> bytes:
    """``models/model.json`` parsed into the schema and written again from the parsed values only; refuses
    (:class:`SchemaError`) any field or value outside it."""
    return json.dumps(_PROGRAM(load_json(data, "the program"), "program")).encode()


def canonical_tensor_config(data: bytes, folder: str, entries: Iterable[str]) -> bytes:
    """A weights or constants config (``{"config": {fqn: payload}}``) rebuilt from its parse: plain tensors
    stored in this archive's ``folder`` (``weight_<n>``/``tensor_<n>`` entries of ``entries``), never pickled."""
    prefix = "weight_" if folder == "data/weights/" else "tensor_"
    present = set(entries)

    def payload_path(value: Any, where: str) -> str:
        if not (isinstance(value, str) and re.fullmatch(rf"{prefix}\d{{1,9}}", value) and folder + value in present):
            raise fail(where, f"{shown(value)} is not a plain tensor entry of the archive")
        return value

    payload = record({"path_name": payload_path, "is_param": boolean, "use_pickle": one_of(False),
                       "tensor_meta": optional(TENSOR_META)})
    config = record({"config": map_of(path, payload)})(load_json(data, f"{folder} config"), f"{folder} config")
    return json.dumps(config).encode()


#: Namespaces whose operators make a graph int8 (the quantize/dequantize pairs PT2E writes, oneDNN's int8 ops).
_INT8_NAMESPACES = ("torch.ops.quantized_decomposed.", "torch.ops.onednn.")


def int8_targets(targets: Iterable[str]) -> list[str]:
    """The int8 operators among a graph's node targets."""
    return sorted(t for t in targets if t.startswith(_INT8_NAMESPACES))
