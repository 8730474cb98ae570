"""The ``.pt2`` program schema: only parsed, rebuilt values reach ``torch.export.load``; every field nobody listed
is refused, and the fields torch turns into code (guards, names of higher-order sub-graphs, shape expressions)
cannot carry any."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pt2_zoo import program_of, tensors, zoo
from torch import nn

from litquant.artifacts.description import check_precision, describe
from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.pt2_file import load_program
from litquant.artifacts.pt2_schema import SchemaError, canonical_program, int8_targets

ARTIFACTS = ("fp32", "ptq", "qat", "lightning-qat")


def _code(marker: Path) -> str:
    """Python that creates ``marker`` when run."""
    return f"open({str(marker)!r}, 'w').write('code ran')"


def _with_program(source: Path, target: Path, change) -> Path:
    """``source`` with its ``models/model.json`` replaced by ``change(text)``."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            out.writestr(info.filename, change(data.decode()).encode() if info.filename.endswith(
                "models/model.json") else data)
    return target


def _program(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("models/model.json"))))


def _refused_in_one_line(path: Path) -> str:
    with pytest.raises(UnsafeArtifactError, match="refused to load") as refused:
        load_artifact(path, runner="eager", progress=False)
    assert "\n" not in str(refused.value)
    return str(refused.value)


# -- the three attacks ------------------------------------------------------------------------------------------
def test_guards_code_is_refused_and_torch_would_exec_it(tiny_artifacts: dict[str, Path], tmp_path: Path) -> None:
    """torch ``exec``\\ s the ``guards_code`` strings into the unlifted module's guard function, which every call
    runs."""
    marker = tmp_path / "marker.txt"

    def add_guard(text: str) -> str:
        program = json.loads(text)
        program["guards_code"] = [_code(marker)]
        return json.dumps(program)

    crafted = _with_program(tiny_artifacts["ptq"], tmp_path / "guards.pt2", add_guard)
    assert "guards_code" in _refused_in_one_line(crafted) and not marker.exists()
    with contextlib.suppress(Exception):
        torch.export.load(crafted).module()(torch.zeros(2, 1, 28, 28))
    assert marker.read_text() == "code ran"  # the attack is real without the schema


def _cond_artifact(path: Path, subgraph_name: str) -> Path:
    """A program with a higher-order operator (``torch.cond``) whose first sub-graph is called ``subgraph_name``
    (a string FX writes unescaped into the module's generated source), with a litquant description."""

    class Branching(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, (x,))

    buffer = io.BytesIO()
    torch.export.save(torch.export.export(Branching(), (torch.randn(2, 1, 28, 28),)), buffer,
                      extra_files={"litquant.json": describe("fp32", "fp32").to_json()})
    plain = path.with_suffix(".plain.pt2")
    plain.write_bytes(buffer.getvalue())
    return _with_program(plain, path, lambda text: text.replace('"true_graph_0"', json.dumps(subgraph_name)))


def test_a_higher_order_operator_and_its_unescaped_subgraph_name_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    encoded = str(list(_code(marker).encode()))  # no dot: FX splits attribute paths on dots
    injected = (f'true_graph_0") if exec(str(bytes({encoded}),"ascii")) is None else getattr(self, '
                '"true_graph_0')
    crafted = _cond_artifact(tmp_path / "cond.pt2", injected)
    message = _refused_in_one_line(crafted)
    assert "higher_order" in message or "plain name" in message, message
    assert not marker.exists()
    with contextlib.suppress(Exception):
        torch.export.load(crafted).module()(torch.randn(2, 1, 28, 28))
    assert marker.read_text() == "code ran"  # the attack is real without the schema
    plain = _cond_artifact(tmp_path / "plain-cond.pt2", "true_graph_0")
    assert "higher_order.cond" in _refused_in_one_line(plain)  # refused for the operator alone


def test_a_tower_of_powers_is_refused_at_once_in_a_fresh_process(tiny_artifacts: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    """A shape of plain arithmetic that sympy would take forever to evaluate: refused before torch sees it."""
    tower = "**".join(["Integer(9)"] * 12)

    def power(text: str) -> str:
        return text.replace("Symbol('s77', positive=True, integer=True)",
                            f"Add(Symbol('s77', positive=True, integer=True), {tower})")

    crafted = _with_program(tiny_artifacts["fp32"], tmp_path / "tower.pt2", power)
    assert crafted.read_bytes() != tiny_artifacts["fp32"].read_bytes()
    script = ("import sys\nfrom litquant.artifacts.errors import UnsafeArtifactError\n"
              "from litquant.artifacts.loading import load_artifact\n"
              f"try:\n    load_artifact({str(crafted)!r}, runner='eager')\nexcept UnsafeArtifactError as err:\n"
              "    print(err)\n    sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "not plain arithmetic" in done.stdout and "model.json" in done.stdout


# -- the grammar, unit by unit ----------------------------------------------------------------------------------
@pytest.mark.parametrize("expression", (
    "Symbol('s0', positive=True, integer=True)",
    "Mul(Integer(32), Symbol('s77', positive=True, integer=True))",
    "Min(Integer(32), Mul(Integer(32), Symbol('s77', positive=True, integer=True)))",
    "FloorDiv(Add(Symbol('s1', integer=True), Integer(-1)), Integer(2))",
))
def test_shape_expressions_of_the_grammar_are_rebuilt_unchanged(expression: str) -> None:
    from litquant.artifacts.pt2_schema import expression as parse

    assert parse(expression, "x") == expression


@pytest.mark.parametrize("expression", (
    "Pow(Integer(2), Integer(100))", "Integer(2)**Integer(2)", "Symbol('s0')*2", "s0 + 1",
    "Symbol('__import__', integer=True)", "Symbol('s0', evaluate=True)", "Integer(99999999999999999999)",
    "Add(" * 40 + "Integer(1)" + ")" * 40, "Integer(1) Integer(2)", "Mod(Integer(3), Integer(2))",
))
def test_shape_expressions_outside_the_grammar_are_refused(expression: str) -> None:
    from litquant.artifacts.pt2_schema import expression as parse

    with pytest.raises(SchemaError):
        parse(expression, "x")


def test_precision_is_checked_against_the_operators() -> None:
    quantize = "torch.ops.quantized_decomposed.quantize_per_tensor.default"
    assert int8_targets({"torch.ops.aten.linear.default", quantize}) == [quantize]
    assert check_precision([], "fp32") is None
    assert check_precision([quantize], "int8") is None
    assert "no int8 operators" in check_precision([], "int8")
    assert "described as fp32" in check_precision([quantize], "fp32")
    assert "neither" in check_precision([], "fp8")


def test_an_fp32_graph_described_as_int8_is_an_error(tiny_artifacts: dict[str, Path], tmp_path: Path) -> None:
    source = tiny_artifacts["fp32"]
    target = tmp_path / "relabelled.pt2"
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith("extra/litquant.json"):
                data = json.dumps({**json.loads(data), "method": "ptq", "precision": "int8"}).encode()
            out.writestr(info.filename, data)
    with pytest.raises(ArtifactError, match="described as int8 but its graph has no int8 operators"):
        load_artifact(target, runner="eager", progress=False)


@pytest.mark.parametrize(("model", "precision"), (
    ("residual", "fp32"), ("hardswish-se", "fp32"), ("transformer", "fp32"), ("two-inputs-tuple-dict-out", "fp32"),
    ("residual", "int8"), ("hardswish-se", "int8"), ("transformer", "int8")))
def test_the_schema_accepts_models_beyond_mnist(model: str, precision: str) -> None:
    """Operator namespaces, not the MNIST model's operators: residual adds, hardswish and squeeze-excite, layer
    norm and attention with symbolic sizes, two inputs with tuple and dict outputs all parse and load, exported
    as they are and quantized with PT2E."""
    program, inputs = program_of(model, precision)
    module = program.module() if precision == "int8" else zoo(model)[0].eval()  # int8: as exported
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    raw = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        text = archive.read(next(n for n in archive.namelist() if n.endswith("models/model.json")))
    canonical = canonical_program(text)
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive, zipfile.ZipFile(rebuilt, "w") as out:
        for info in archive.infolist():
            out.writestr(info.filename, canonical if info.filename.endswith("models/model.json")
                         else archive.read(info))
    rebuilt.seek(0)
    expected, got = module(*inputs), torch.export.load(rebuilt).module()(*inputs)
    assert torch.equal(torch.cat([t.flatten() for t in tensors(expected)]),
                       torch.cat([t.flatten() for t in tensors(got)]))


# -- the fuzz test ----------------------------------------------------------------------------------------------
def _locations(value: Any, where: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value of a JSON document with its path (keys and indices), breadth first (top-level fields first)."""
    queue = [(where, value)]
    while queue:
        path, item = queue.pop(0)
        yield path, item
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        queue.extend((path + (key,), child) for key, child in children)


#: Objects of a program whose keys are data (names, symbols, operator namespaces), not the schema's field names.
_MAPS = ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values",
         "range_constraints", "opset_version", "metadata", "treespec_namedtuple_fields")


def _mutations(document: dict, marker: Path) -> Iterator[tuple[str, str]]:
    """``document`` as JSON with each string (values, and keys of objects whose keys are data), number and list
    in turn replaced by an injection payload, a huge number, a deep nesting, or extended with the payload; and
    each object given a new key. Mutates in place and restores before the next one."""
    payload = _code(marker)
    deep: Any = 0
    for _ in range(200):
        deep = [deep]
    for path, value in list(_locations(document)):
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        where = "/".join(map(str, path))
        replacements: list[tuple[str, Any]] = []
        if isinstance(value, str):
            replacements = [("payload", payload)]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            replacements = [("huge", 10**30 if isinstance(value, int) else 1e300)]
        elif isinstance(value, list):
            replacements = [("deep", deep), ("payload appended", [*value, payload])]
        elif isinstance(value, dict):
            replacements = [("new key", {**value, "injected": payload})]
        for label, replacement in replacements:
            if not path:
                yield label, json.dumps(replacement)
                continue
            parent[path[-1]] = replacement
            yield f"{where}: {label}", json.dumps(document)
            parent[path[-1]] = value
        if len(path) >= 2 and path[-2] in _MAPS:
            items = list(parent.items())
            parent.clear()
            parent.update((payload if k == path[-1] else k, v) for k, v in items)
            yield f"{where}: key payload", json.dumps(document)
            parent.clear()
            parent.update(items)


@pytest.mark.parametrize("name", ARTIFACTS)
def test_every_mutation_of_the_program_is_refused_or_loads_the_same_model(
        tiny_artifacts: dict[str, Path], tmp_path: Path, name: str) -> None:
    """Fuzz every field of a real artifact's ``model.json``: each mutation is refused in one line, or reaches torch
    as the same canonical program (the field was dropped), or loads to a model with the same outputs, both through
    ``torch.export.load`` and through the eager loader that builds the module from litquant's own parse; no code
    from the file ever runs."""
    source = tiny_artifacts[name]
    marker = tmp_path / "marker.txt"
    document = _program(source)
    baseline = canonical_program(json.dumps(document).encode())
    images = torch.randn(3, 1, 28, 28)
    loaders = {"torch.export.load": lambda path: load_program(path)[0].module(),
               "eager": lambda path: load_artifact(path, runner="eager", progress=False)}
    expected = loaders["torch.export.load"](source)(images)
    assert torch.equal(loaders["eager"](source)(images), expected)
    counts = {"refused": 0, "same program reaches torch": 0, "loaded the same": 0}
    refused: set[str] = set()
    for label, mutated in _mutations(document, marker):
        try:
            reaching_torch = canonical_program(mutated.encode())  # what the loader hands torch.export.load
        except SchemaError as err:
            assert "\n" not in str(err), label
            counts["refused"] += 1
            refused.add(label)
            continue
        if reaching_torch == baseline:
            counts["same program reaches torch"] += 1
            continue
        fuzzed = _with_program(source, tmp_path / "fuzzed.pt2", lambda _, text=mutated: text)
        outcomes = set()
        for loader, load in loaders.items():
            try:
                got = load(fuzzed)(images)
            except ArtifactError as err:
                assert "\n" not in str(err), (label, loader)
                outcomes.add("refused")
            else:
                assert torch.equal(got, expected), (label, loader)
                outcomes.add("loaded the same")
            assert not marker.exists(), (label, loader)
        counts["refused" if "refused" in outcomes else "loaded the same"] += 1
    assert not marker.exists()
    assert counts["refused"] > 10 * counts["same program reaches torch"] > 0, counts
    assert {"guards_code: payload appended", "graph_module/graph/nodes/0/target: payload"} <= refused, counts


def test_a_value_of_the_wrong_type_anywhere_is_refused_with_a_schema_error(tiny_artifacts: dict[str, Path]) -> None:
    """Every value of a real program replaced by null, a list, an object, a string, a float and a bool: each is
    refused as outside the schema (never a TypeError or KeyError from inside the parser) or rebuilt."""
    document = _program(tiny_artifacts["fp32"])
    for path, value in list(_locations(document)):
        if not path:
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        for wrong in (None, [], {}, "x", 0.5, True):
            parent[path[-1]] = wrong
            with contextlib.suppress(SchemaError):
                canonical_program(json.dumps(document).encode())
            parent[path[-1]] = value
