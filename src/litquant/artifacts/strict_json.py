"""Strict JSON parsing: each value is parsed into exactly the shape expected (a type and a range), and anything
else is refused with a one-line :class:`SchemaError` naming where. Parsers are plain functions ``(value, where) ->
parsed value``; the parsed value is a new object built from what was checked, never the input itself.

Example::

    point = record({"x": integer, "y": integer}, {"label": (optional(name), None)})
    point({"x": 1, "y": 2}, "point")        # {"x": 1, "y": 2, "label": None}
    point({"x": 1, "z": 2}, "point")        # SchemaError: point: unknown field 'z'
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["INT64", "MAX_FLOAT", "MAX_ITEMS", "MAX_NAME", "NAME", "Parser", "SchemaError", "boolean", "bounded",
           "empty_list", "empty_map", "fail", "integer", "list_of", "load_json", "map_of", "name", "null", "number",
           "one_of", "optional", "path", "record", "shown", "string", "union"]

MAX_NAME = 200
MAX_ITEMS = 100_000
MAX_FLOAT = 3.4028234663852886e38
INT64 = 2**63
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


class SchemaError(ValueError):
    """A value of the file that is not in the schema; the message names where, on one line."""


Parser = Callable[[Any, str], Any]


def fail(where: str, what: str) -> SchemaError:
    return SchemaError(f"{where}: {what}")


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- scalars ------------------------------------------------------------------------------------------------
def name(value: Any, where: str) -> str:
    """A plain ASCII identifier of bounded length that is not a Python keyword."""
    if not (isinstance(value, str) and len(value) <= MAX_NAME and NAME.fullmatch(value)
            and not keyword.iskeyword(value)):
        raise fail(where, f"{shown(value)} is not a plain name")
    return value


def path(value: Any, where: str) -> str:
    """A dotted path of names and indices (``layers.0.weight``); ``""`` for the root module."""
    if value == "":
        return value
    if not (isinstance(value, str) and len(value) <= 4 * MAX_NAME
            and all(_PATH_PART.fullmatch(part) and not keyword.iskeyword(part) for part in value.split("."))):
        raise fail(where, f"{shown(value)} is not a dotted path of names")
    return value


def integer(value: Any, where: str, low: int = -INT64, high: int = INT64 - 1) -> int:
    if type(value) is not int or not low <= value <= high:
        raise fail(where, f"{shown(value)} is not an integer in [{low}, {high}]")
    return value


def bounded(low: int, high: int) -> Parser:
    return lambda value, where: integer(value, where, low, high)


def number(value: Any, where: str) -> float | str:
    """A float within float32's range, or torch's spelling of an infinity (``"Infinity"``, ``"-Infinity"``)."""
    if value in ("Infinity", "-Infinity"):
        return value
    if type(value) is int:
        value = float(integer(value, where))
    if type(value) is not float or not -MAX_FLOAT <= value <= MAX_FLOAT:
        raise fail(where, f"{shown(value)} is not a number within float32's range")
    return value


def boolean(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise fail(where, f"{shown(value)} is not true or false")
    return value


def one_of(*allowed: Any) -> Parser:
    def parse(value: Any, where: str) -> Any:
        if type(value) not in (type(a) for a in allowed) or value not in allowed:
            raise fail(where, f"{shown(value)} is not one of {list(allowed)}")
        return value
    return parse


def null(value: Any, where: str) -> None:
    if value is not None:
        raise fail(where, f"{shown(value)} is not null")
    return None


def optional(parse: Parser) -> Parser:
    return lambda value, where: None if value is None else parse(value, where)


# -- containers ---------------------------------------------------------------------------------------------
def list_of(item: Parser, max_items: int = MAX_ITEMS) -> Parser:
    def parse(value: Any, where: str) -> list:
        if not isinstance(value, list) or len(value) > max_items:
            raise fail(where, f"not a list of at most {max_items} items")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return parse


def empty_list(value: Any, where: str) -> list:
    if value != [] or not isinstance(value, list):
        raise fail(where, f"{shown(value)} must be empty")
    return []


def empty_map(value: Any, where: str) -> dict:
    if value != {} or not isinstance(value, dict):
        raise fail(where, f"{shown(value)} must be empty")
    return {}


def map_of(key: Parser, item: Parser, max_items: int = MAX_ITEMS) -> Parser:
    def parse(value: Any, where: str) -> dict:
        if not isinstance(value, dict) or len(value) > max_items:
            raise fail(where, f"not an object of at most {max_items} entries")
        return {key(k, f"{where} key"): item(v, f"{where}[{k!r}]") for k, v in value.items()}
    return parse


def record(required: Mapping[str, Parser], defaults: Mapping[str, tuple[Parser, Any]] | None = None) -> Parser:
    """An object with exactly these fields; those of ``defaults`` may be absent (their default is written)."""
    defaults = defaults or {}

    def parse(value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise fail(where, "not an object")
        unknown = [k for k in value if k not in required and k not in defaults]
        if unknown:
            raise fail(where, f"unknown field {shown(unknown[0])}")
        missing = [k for k in required if k not in value]
        if missing:
            raise fail(where, f"field {missing[0]!r} is missing")
        parsed = {k: parse_field(value[k], f"{where}.{k}") for k, parse_field in required.items()}
        for k, (parse_field, default) in defaults.items():
            parsed[k] = parse_field(value[k], f"{where}.{k}") if k in value else default
        return parsed
    return parse


def union(variants: Mapping[str, Parser]) -> Parser:
    """torch's tagged union: an object with exactly one field, one of ``variants``."""
    def parse(value: Any, where: str) -> dict:
        if not isinstance(value, dict) or len(value) != 1:
            raise fail(where, "not an object with one field")
        (tag, item), = value.items()
        if tag not in variants:
            raise fail(where, f"{shown(tag)} is not one of {sorted(variants)}")
        return {tag: variants[tag](item, f"{where}.{tag}")}
    return parse


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 1_000_000:
        raise fail(where, "not a string")
    return value


def load_json(data: bytes, what: str) -> Any:
    def refuse_constant(text: str) -> None:
        raise SchemaError(f"{what}: {text} is not a JSON number")

    try:
        return json.loads(data, parse_constant=refuse_constant)
    except SchemaError:
        raise
    except (ValueError, RecursionError) as err:
        raise SchemaError(f"{what} is not JSON ({type(err).__name__})") from None
