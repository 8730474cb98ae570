"""Strict JSON parsing: exactly the expected shape is rebuilt, anything else is one SchemaError line naming where."""

from __future__ import annotations

import pytest

from litquant.artifacts.strict_json import (
    SchemaError,
    integer,
    list_of,
    load_json,
    map_of,
    name,
    number,
    optional,
    path,
    record,
    union,
)

POINT = record({"x": integer, "y": integer}, {"label": (optional(name), None)})


def test_a_record_is_rebuilt_with_its_defaults() -> None:
    data = {"x": 1, "y": 2}
    parsed = POINT(data, "point")
    assert parsed == {"x": 1, "y": 2, "label": None} and parsed is not data


@pytest.mark.parametrize(("value", "message"), (
    ({"x": 1, "y": 2, "z": 3}, "point: unknown field 'z'"),
    ({"x": 1}, "point: field 'y' is missing"),
    ({"x": 1, "y": True}, "point.y: True is not an integer"),
    ({"x": 1, "y": 2**63}, "point.y: 9223372036854775808 is not an integer"),
    ({"x": 1, "y": 2, "label": "a b"}, "point.label: 'a b' is not a plain name"),
    ([1, 2], "point: not an object"),
))
def test_anything_else_is_one_line_naming_where(value: object, message: str) -> None:
    with pytest.raises(SchemaError) as refused:
        POINT(value, "point")
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_names_paths_numbers_unions_and_bounds() -> None:
    assert path("layers.0.weight", "p") == "layers.0.weight" and path("", "p") == ""
    for bad_path in ("layers..0", "a.import", "a/b", "a.b\n"):
        with pytest.raises(SchemaError):
            path(bad_path, "p")
    for bad_name in ("class", "x" * 201, "é", "a-b", ""):
        with pytest.raises(SchemaError):
            name(bad_name, "n")
    assert number("Infinity", "f") == "Infinity" and number(2, "f") == 2.0
    for bad_number in (1e300, "NaN", None):
        with pytest.raises(SchemaError):
            number(bad_number, "f")
    tagged = union({"as_int": integer, "as_name": name})
    assert tagged({"as_name": "x"}, "u") == {"as_name": "x"}
    for bad_union in ({"as_int": 1, "as_name": "x"}, {"as_float": 1.0}, {}):
        with pytest.raises(SchemaError):
            tagged(bad_union, "u")
    with pytest.raises(SchemaError, match="at most 2 items"):
        list_of(integer, 2)([1, 2, 3], "l")
    with pytest.raises(SchemaError, match="key"):
        map_of(name, integer)({"not a name": 1}, "m")


@pytest.mark.parametrize("text", (b"[NaN]", b"{\"a\": Infinity}", b"[" * 100_000 + b"]" * 100_000, b"{",
                                  b"1" * 5000))
def test_json_that_python_would_stretch_is_refused(text: bytes) -> None:
    with pytest.raises(SchemaError):
        load_json(text, "doc")
