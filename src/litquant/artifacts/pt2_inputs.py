"""What the eager module of a ``.pt2`` takes, from litquant's parse of the program: its call signature (flat
positional and keyword inputs) and a forward pre-hook that refuses inputs the program cannot take, as
``torch.export.load(file).module()`` does: their number, ranks, fixed sizes, dynamic sizes that must agree and
stay within the program's range, and the program's guards (comparisons of input sizes, in the grammar
:mod:`litquant.artifacts.pt2_schema` allows).

Example::

    from litquant.artifacts.pt2_inputs import call_signature, input_check

    positional, keyword_names, out_spec = call_signature(program)   # program: the parsed models/model.json
    module.register_forward_pre_hook(input_check(program, names, sizes), with_kwargs=True)
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["RESERVED_INPUTS", "UnloadableProgram", "call_signature", "input_check"]

#: Names the module's generated Python refers to: an input may not be called so.
RESERVED_INPUTS = frozenset({"self", "getattr", "inf", "nan", "NoneType", "torch", "device", "fx_pytree", "pytree"})
_SYMBOL = re.compile(r"Symbol\('([a-z]+\d+)'[^()]*\)")


class UnloadableProgram(Exception):
    """What in the parsed program the eager module cannot be built from (one line)."""


def call_signature(program: dict) -> tuple[int, list[str], dict]:
    """How many positional inputs the module takes, the names of its keyword inputs (flat ``(args, kwargs)``) and
    its output spec, from the root's call signature."""
    root = next((entry["signature"] for entry in program["graph_module"]["module_call_graph"]
                 if entry["fqn"] == ""), None)
    if root is None:
        raise UnloadableProgram("no call signature")
    in_spec = json.loads(root["in_spec"])[1]
    positional, keywords = in_spec["children_spec"] if in_spec["type"] == "builtins.tuple" else ({}, {})
    if not keywords or any(child["type"] is not None
                           for child in positional["children_spec"] + keywords["children_spec"]):
        raise UnloadableProgram("inputs are not flat (args, kwargs)")
    return len(positional["children_spec"]), json.loads(keywords["context"]) if keywords["type"] == "builtins.dict" \
        else [], json.loads(root["out_spec"])[1]


#: A side of a guard in the schema's grammar: ``L['x'].size()[0]``, ``L['inputs'][1].size()[0]``, or a number.
_GUARD_SIDE = re.compile(r"L\['(\w+)'\](?:\[(\d+)\])?\.size\(\)\[(\d+)\]|(\d+)")
_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt,
                ">": operator.gt}
#: A guard as the pre-hook checks it: its text, then each side an input's ``(index, dimension)`` or a number
#: around the comparison.
_Guard = tuple[str, tuple[int, int] | int, Callable, tuple[int, int] | int]


def _guards(program: dict, argument_names: list[str]) -> list[_Guard]:
    """The program's guards (comparisons of input sizes, which ``torch.export.load(file).module()`` checks on every
    call), each side resolved to a flat input by the module's argument names as torch resolves it (``L['x']``, and
    ``L['inputs'][0]`` for ``inputs_0``)."""
    guards = []
    for guard in program.get("guards_code", []):
        left, comparison, right = guard.split(" ")
        sides: list[tuple[int, int] | int] = []
        for side in (left, right):
            parsed = _GUARD_SIDE.fullmatch(side)
            if parsed is None:
                raise UnloadableProgram(f"guard {guard!r} compares more than input sizes and numbers")
            name, index, dimension, number = parsed.groups()
            argument = name if index is None else f"{name}_{index}"
            if number is None and argument not in argument_names:
                raise UnloadableProgram(f"guard {guard!r} names no input of the module")
            sides.append(int(number) if number is not None else (argument_names.index(argument), int(dimension)))
        guards.append((guard, sides[0], _COMPARISONS[comparison], sides[1]))
    return guards


def _input_checker(names: list[str], sizes: list[list], ranges: dict[str, tuple], guards: list[_Guard]) -> Callable:
    """A forward pre-hook refusing inputs the program cannot take, as the exported module's does: their number,
    ranks, fixed sizes, dynamic sizes that must agree with each other and stay within the program's range, and the
    program's guards."""
    def check(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if len(args) + len(kwargs) != len(names):
            raise RuntimeError(f"Unexpected number of inputs (expected {len(names)}, got {len(args) + len(kwargs)})")
        bound: dict[str, int] = {}
        values = list(args) + [kwargs.get(name) for name in names[len(args):]]
        for name, value, expected in zip(names, values, sizes, strict=True):
            if not isinstance(value, torch.Tensor) or value.dim() != len(expected):
                raise RuntimeError(f"Expected input {name!r} to be a tensor of {len(expected)} dimensions, got "
                                   f"{list(value.shape) if isinstance(value, torch.Tensor) else type(value)}")
            for index, (size, want) in enumerate(zip(value.shape, expected, strict=True)):
                low, high = ranges.get(want, (None, None)) if isinstance(want, str) else (want, want)
                if isinstance(want, str) and bound.setdefault(want, size) != size \
                        or low is not None and size < low or high is not None and size > high:
                    raise RuntimeError(f"Input {name!r}.shape[{index}] = {size} does not fit the program (other "
                                       f"inputs' sizes, or {low}..{high})")
        shapes = [value.shape for value in values]
        for guard, left, compare, right in guards:
            if not compare(*(side if isinstance(side, int) else _size(shapes[side[0]], side[1])
                             for side in (left, right))):
                raise RuntimeError(f"The inputs' sizes fail the program's guard {guard}")
    return check


def _size(shape: torch.Size, dimension: int) -> int:
    if dimension >= len(shape):
        raise RuntimeError(f"A guard of the program reads dimension {dimension} of an input of {len(shape)}")
    return shape[dimension]


def input_check(program: dict, names: list[str], sizes: list[list[dict]]) -> Callable:
    """The forward pre-hook of the module whose inputs are ``names`` (positional, then keyword), each of the
    parsed ``sizes`` (``as_int`` or a symbol), under the program's range constraints and guards."""
    dims = [[d["as_int"] if "as_int" in d else (_SYMBOL.fullmatch(d["as_expr"]["expr_str"]) or [None, None])[1]
             for d in input_sizes] for input_sizes in sizes]
    ranges = {symbol: (r["min_val"], r["max_val"]) for symbol, r in program["range_constraints"].items()}
    forward_arg_names = next(entry["signature"] for entry in program["graph_module"]["module_call_graph"]
                             if entry["fqn"] == "")["forward_arg_names"] or []
    guards = _guards(program, forward_arg_names if len(forward_arg_names) == len(names) else names)
    return _input_checker(names, dims, ranges, guards)
