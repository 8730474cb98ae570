"""The eager module built from litquant's own parse of a ``.pt2``: the same outputs, bit for bit, as
``torch.export.load(file).module()`` for MNIST's artifacts and for models beyond MNIST (several inputs, tuple and
dict outputs, residuals, layer norm, attention, operators with several results), at batch sizes 1 and 5; the same
graph; the same refusals of wrong inputs; and loading it imports neither torch.export's deserializer nor
TorchDynamo."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import run_python
from pt2_zoo import program_of, tensors

from litquant.artifacts.description import describe
from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.pt2_graph import load_eager_module
from litquant.artifacts.pt2_schema import MEMORY_FORMATS, SCALAR_TYPES
from litquant.artifacts.saving import save_pt2
from litquant.artifacts.signature import program_signature

#: The zoo programs (model, precision) and the output each names as its class logits.
ZOO_CASES = {("residual", "fp32"): None, ("hardswish-se", "fp32"): None, ("transformer", "fp32"): None,
             ("residual", "int8"): None, ("hardswish-se", "int8"): None, ("transformer", "int8"): None,
             ("two-inputs-tuple-dict-out", "fp32"): 0, ("several-results", "fp32"): "values"}
#: What only the torch.export deserializer and its tracing need; the eager loader imports none of them.
NOT_IMPORTED = ("torch._dynamo", "torch._export.serde.serialize", "torch.export._trace")


@pytest.fixture(scope="module")
def zoo_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Path, tuple]]:
    """Each zoo program saved as a litquant ``.pt2`` (with its signature), and its example inputs."""
    folder = tmp_path_factory.mktemp("zoo")
    made = {}
    for (model, precision), logits in ZOO_CASES.items():
        program, inputs = program_of(model, precision)
        description = describe("ptq" if precision == "int8" else "fp32", precision,
                               signature=program_signature(program, logits))
        made[model, precision] = save_pt2(program, folder / f"{model}-{precision}.pt2", description), inputs
    return made


def _batch(inputs: tuple[torch.Tensor, ...], size: int) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(size)
    return tuple(torch.randn(size, *t.shape[1:]) for t in inputs)


def _assert_identical(got: Any, expected: Any) -> None:
    """The same structure (tensor, tuple, dict and its keys) holding bit-identical tensors."""
    assert type(got) is type(expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
    assert len(tensors(got)) == len(tensors(expected))
    for a, b in zip(tensors(got), tensors(expected), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def _call_nodes(module: torch.fx.GraphModule) -> list[tuple[Any, dict]]:
    return [(node.target, node.meta.get("nn_module_stack")) for node in module.graph.nodes
            if node.op == "call_function"]


@pytest.mark.parametrize("case", ZOO_CASES, ids=["-".join(case) for case in ZOO_CASES])
@pytest.mark.parametrize("batch", (1, 5))
def test_zoo_models_give_bit_identical_outputs(zoo_artifacts: dict, case: tuple[str, str], batch: int) -> None:
    path, inputs = zoo_artifacts[case]
    module, description = load_eager_module(path)
    reference = torch.export.load(path).module()
    images = _batch(inputs, batch)
    with torch.inference_mode():
        for _ in range(2):  # twice: a buffer the model updates is updated alike
            _assert_identical(module(*images), reference(*images))
    assert description.precision == case[1]
    assert _call_nodes(module) == _call_nodes(reference)


@pytest.mark.parametrize("name", ("fp32", "ptq", "qat", "lightning-qat"))
@pytest.mark.parametrize("batch", (1, 5))
def test_mnist_artifacts_give_bit_identical_outputs(tiny_artifacts: dict[str, Path], name: str,
                                                    batch: int) -> None:
    loaded = load_artifact(tiny_artifacts[name], runner="eager", progress=False)
    reference = torch.export.load(tiny_artifacts[name]).module()
    images = _batch((torch.zeros(1, 1, 28, 28),), batch)
    with torch.inference_mode():
        _assert_identical(loaded(*images), reference(*images))
    assert isinstance(loaded.module, torch.fx.GraphModule)
    assert _call_nodes(loaded.module) == _call_nodes(reference)
    weights = {node.target for node in loaded.module.graph.nodes if node.op == "get_attr"}
    assert {name for name, _ in reference.named_parameters()} <= weights


def test_keyword_inputs_and_wrong_inputs_are_handled_as_the_exported_module_does(zoo_artifacts: dict) -> None:
    path, (x, y) = zoo_artifacts["two-inputs-tuple-dict-out", "fp32"]
    module, _ = load_eager_module(path)
    reference = torch.export.load(path).module()
    _assert_identical(module(x, inputs_1=y), reference(x, y))
    wrong = {"one input missing": (x,), "one too many": (x, y, y), "rank": (x[0], y),
             "fixed size": (x[:, :, :27], y), "batch sizes differ": (x, torch.randn(3, 3))}
    for what, inputs in wrong.items():
        with pytest.raises((AssertionError, RuntimeError, TypeError, ValueError)):
            reference(*inputs)
        with pytest.raises(RuntimeError, match="input"):
            module(*inputs)
        assert what


@pytest.mark.parametrize("guard", ("L['x'].size()[0] <= 4", "L['x'].size()[0] != 5", "5 > L['x'].size()[0]"))
def test_the_program_s_guards_refuse_inputs_as_the_exported_module_s_do(tiny_artifacts: dict[str, Path],
                                                                        tmp_path: Path, guard: str) -> None:
    """A guard of the schema's grammar added to a real program: the eager module checks it on every call, as
    ``torch.export.load(file).module()`` runs it; a guard naming no input of the module is refused at load."""
    crafted = _rewritten(tiny_artifacts["ptq"], tmp_path / "guarded.pt2", "models/model.json",
                         lambda data: json.dumps({**json.loads(data), "guards_code": [guard]}).encode())
    module, _ = load_eager_module(crafted)
    reference = torch.export.load(crafted).module()
    images = _batch((torch.zeros(1, 1, 28, 28),), 4)
    _assert_identical(module(*images), reference(*images))
    with pytest.raises(AssertionError, match="Guard failed"):
        reference(*_batch(images, 5))
    with pytest.raises(RuntimeError, match="guard"):
        module(*_batch(images, 5))
    unknown = _rewritten(crafted, tmp_path / "unknown.pt2", "models/model.json",
                         lambda data: data.replace(b"L['x']", b"L['y']"))
    with pytest.raises(ArtifactError, match="names no input"):
        load_eager_module(unknown)


def test_loading_eager_imports_neither_the_deserializer_nor_dynamo(tiny_artifacts: dict[str, Path]) -> None:
    script = ("import sys, torch\nfrom litquant.artifacts.loading import load_artifact\n"
              f"model = load_artifact({str(tiny_artifacts['ptq'])!r}, runner='eager')\n"
              "print(model(torch.zeros(2, 1, 28, 28)).shape[1])\n"
              f"print([name for name in {NOT_IMPORTED!r} if name in sys.modules])\n")
    lines = run_python("-c", script).stdout.split("\n")
    assert lines[:2] == ["10", "[]"]


# -- what the builder refuses -----------------------------------------------------------------------------------
def _rewritten(source: Path, target: Path, entry: str, change) -> Path:
    """``source`` with its entry ending in ``entry`` replaced by ``change(bytes)``."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            out.writestr(info.filename, change(data) if info.filename.endswith(entry) else data)
    return target


def _program_change(change):
    def rewrite(data: bytes) -> bytes:
        program = json.loads(data)
        change(program["graph_module"])
        return json.dumps(program).encode()
    return rewrite


def _python_operator(target: str, inputs: int, kind: int = 1) -> dict:
    """A node calling a Python operator on ``inputs`` integers (FX prints it as ``a + b`` or ``a[b]``)."""
    return {"target": target, "metadata": {}, "outputs": [{"as_sym_int": {"as_name": "crafted"}}],
            "inputs": [{"name": f"a{i}", "arg": {"as_int": i + 1}, "kind": kind} for i in range(inputs)]}


def _prepend(*nodes: dict) -> Callable[[dict], None]:
    """A change of a program putting ``nodes`` before its own."""
    def change(module: dict) -> None:
        module["graph"]["nodes"][:0] = nodes
    return change


def _unbind(results: list[str | None]) -> dict:
    """A node unbinding the input into ``results`` (a name each, or ``None`` for a result left unnamed)."""
    return {"target": "torch.ops.aten.unbind.int", "metadata": {},
            "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1}],
            "outputs": [{"as_tensor": {"name": name}} if name else {"as_none": True} for name in results]}


@pytest.mark.parametrize(("what", "entry", "change", "message"), (
    ("a value used before it is made", "models/model.json",
     _program_change(lambda module: module["graph"]["nodes"].reverse()), "before it is made"),
    ("an input called self", "models/model.json", lambda data: data.replace(b'"x"', b'"self"'), "reserved names"),
    ("a weight shorter than its view", "data/weights/weight_0", lambda data: data[:4], "cannot load"),
    ("a size operator with one input", "models/model.json",
     _program_change(_prepend(_python_operator("_operator.add", 1))), "exactly two positional inputs"),
    ("a size operator with three inputs", "models/model.json",
     _program_change(_prepend(_python_operator("_operator.mul", 3))), "exactly two positional inputs"),
    ("a result the program does not declare", "models/model.json",
     _program_change(_prepend(_unbind(["undeclared"]))), "not declare"),
    ("more results than a program has nodes", "models/model.json",
     _program_change(_prepend(*[_unbind([None] * 1024)] * 100)), "more than 100000 calls"),
    ("a getitem with a keyword input", "models/model.json",
     _program_change(_prepend(_python_operator("_operator.getitem", 2, kind=2))),
     "exactly two positional inputs"),
))
def test_programs_the_builder_cannot_make_are_refused_in_one_line(tiny_artifacts: dict[str, Path], tmp_path: Path,
                                                                  what: str, entry: str, change,
                                                                  message: str) -> None:
    crafted = _rewritten(tiny_artifacts["fp32"], tmp_path / "crafted.pt2", entry, change)
    with pytest.raises(ArtifactError, match=message) as refused:
        load_eager_module(crafted)
    assert "\n" not in str(refused.value), what


def test_empty_entries_may_not_stand_for_more_zeros_than_an_archive_holds(tiny_artifacts: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    """torch writes no bytes for an empty tensor and the loader makes zeros of its declared size: three empty
    entries of 200 MiB each, in a file of a few kilobytes, are refused before anything that large is made."""
    crafted = tmp_path / "zeros.pt2"
    with zipfile.ZipFile(tiny_artifacts["fp32"]) as archive, zipfile.ZipFile(crafted, "w") as out:
        root = archive.namelist()[0].split("/", 1)[0]
        config = json.loads(archive.read(f"{root}/data/weights/model_weights_config.json"))
        emptied = [payload["path_name"] for payload in list(config["config"].values())[:3]]
        for payload in list(config["config"].values())[:3]:
            payload["tensor_meta"].update(sizes=[{"as_int": 50 * 2**20}], strides=[{"as_int": 1}])
        for info in archive.infolist():
            data = json.dumps(config).encode() if info.filename.endswith("model_weights_config.json") \
                else b"" if info.filename.rsplit("/", 1)[1] in emptied else archive.read(info)
            out.writestr(info.filename, data)
    with pytest.raises(ArtifactError, match="past 512 MiB") as refused:
        load_eager_module(crafted)
    assert "\n" not in str(refused.value)


def test_the_schema_codes_are_torch_export_s() -> None:
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE, _SERIALIZE_TO_TORCH_MEMORY_FORMAT

    assert {int(code): dtype for code, dtype in _SERIALIZE_TO_TORCH_DTYPE.items()} == \
        {code: getattr(torch, name) for code, name in SCALAR_TYPES.items()}
    assert {int(code): memory_format for code, memory_format in _SERIALIZE_TO_TORCH_MEMORY_FORMAT.items()} == \
        {code: getattr(torch, name) for code, name in MEMORY_FORMATS.items()}


def test_an_error_while_the_module_runs_prints_no_traceback_of_its_generated_code(zoo_artifacts: dict,
                                                                                  tmp_path: Path, capfd) -> None:
    """A program that loads but fails when it runs (``chunk`` asked for fewer chunks than the graph unpacks) raises
    the operator's error to the caller, whose one line is all a user sees: torch.fx's own handler, which prints the
    generated code's traceback to stderr, is not in the way."""
    def fewer_chunks(module: dict) -> None:
        for node in module["graph"]["nodes"]:
            for argument in node["inputs"] if node["target"] == "torch.ops.aten.chunk.default" else []:
                if argument["name"] == "chunks":
                    argument["arg"]["as_int"] -= 1

    path, inputs = zoo_artifacts["several-results", "fp32"]
    crafted = _rewritten(path, tmp_path / "fewer-chunks.pt2", "models/model.json", _program_change(fewer_chunks))
    model = load_artifact(crafted, runner="eager")
    capfd.readouterr()
    with pytest.raises((RuntimeError, IndexError, ValueError)):
        model(*inputs)
    assert capfd.readouterr().err == ""


def test_a_program_past_the_json_cap_is_refused_before_it_is_parsed(tiny_artifacts: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """A ``model.json`` padded to 33 MiB (deflated, it adds well under a megabyte to the file) is refused from its
    declared size, before parsing it costs many times that in memory."""
    crafted = tmp_path / "padded.pt2"
    with zipfile.ZipFile(tiny_artifacts["fp32"]) as archive, \
            zipfile.ZipFile(crafted, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            data = archive.read(info)
            out.writestr(info.filename, data + b" " * 33 * 2**20 if info.filename.endswith("models/model.json")
                         else data)
    assert crafted.stat().st_size < tiny_artifacts["fp32"].stat().st_size + 2**20
    with pytest.raises(UnsafeArtifactError, match="more than 32 MiB") as refused:
        load_eager_module(crafted)
    assert "\n" not in str(refused.value)
