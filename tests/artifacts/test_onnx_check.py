"""ONNX artifacts: every tensor is inside the file and every node is of a standard domain, wherever they sit
(initializers, sparse initializers, node attributes, sub-graphs at any depth, model-local functions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from litquant.artifacts.description import ONNX_DESCRIPTION, describe
from litquant.artifacts.errors import UnsafeArtifactError
from litquant.artifacts.loading import load_artifact, read_description
from litquant.artifacts.onnx_check import unsafe_reason

TEN_FLOATS = np.arange(10, dtype=np.float32)


def _external(name: str, location: str = "data.bin") -> TensorProto:
    """A tensor of ten floats whose data ONNX Runtime would read from ``location``."""
    tensor = numpy_helper.from_array(TEN_FLOATS, name)
    set_external_data(tensor, location=location, offset=0, length=TEN_FLOATS.nbytes)
    tensor.ClearField("raw_data")
    return tensor


def _constant_graph(name: str, tensor: TensorProto) -> onnx.GraphProto:
    """A branch graph returning ``tensor`` through a ``Constant`` node."""
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [10])
    return helper.make_graph([helper.make_node("Constant", [], [f"{name}_out"], value=tensor)], name, [], [out])


def _branching_model(then_branch: onnx.GraphProto, depth: int = 1, **model: object) -> onnx.ModelProto:
    """``If(flag) then then_branch else zeros``, the ``If`` nested ``depth`` levels deep in further ``If``\\ s."""
    zeros = numpy_helper.from_array(np.zeros(10, np.float32), "zeros")
    branch = then_branch
    for level in range(depth):
        node = helper.make_node("If", ["flag"], [f"level{level}_out"], then_branch=branch,
                                else_branch=_constant_graph(f"else{level}", zeros))
        out = helper.make_tensor_value_info(f"level{level}_out", TensorProto.FLOAT, [10])
        branch = helper.make_graph([node], f"level{level}", [], [out])
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [])
    graph = helper.make_graph(list(branch.node), "main", [flag], list(branch.output))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], **model)


def test_external_data_in_a_subgraph_is_real_for_onnx_runtime(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime, given the bytes, reads a sub-graph tensor's external data from the working folder."""
    import onnxruntime as ort

    (tmp_path / "data.bin").write_bytes((TEN_FLOATS * 7).tobytes())
    monkeypatch.chdir(tmp_path)
    model = _branching_model(_constant_graph("then", _external("stolen")))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"flag": np.array(True)})[0].tolist() == (TEN_FLOATS * 7).tolist()
    assert unsafe_reason(model) == "tensor 'stolen' reads external data"


def _with_sparse_initializer(model: onnx.ModelProto) -> onnx.ModelProto:
    indices = numpy_helper.from_array(np.arange(10, dtype=np.int64), "indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(_external("sparse_values"), indices, [10]))
    return model


def _with_sparse_attribute(model: onnx.ModelProto) -> onnx.ModelProto:
    indices = numpy_helper.from_array(np.arange(10, dtype=np.int64), "indices")
    sparse = helper.make_sparse_tensor(_external("sparse_attribute"), indices, [10])
    model.graph.node.append(helper.make_node("Constant", [], ["dense"], sparse_value=sparse))
    return model


def _with_function(model: onnx.ModelProto, tensor: TensorProto | None = None) -> onnx.ModelProto:
    value = tensor if tensor is not None else numpy_helper.from_array(TEN_FLOATS, "inside")
    body = [helper.make_node("Constant", [], ["y"], value=value)]
    model.functions.append(helper.make_function("local.functions", "Ten", [], ["y"], body,
                                                [helper.make_opsetid("", 18)]))
    return model


def _with_initializer(model: onnx.ModelProto) -> onnx.ModelProto:
    model.graph.initializer.append(_external("init"))
    return model


def _plain() -> onnx.ModelProto:
    return _branching_model(_constant_graph("then", numpy_helper.from_array(TEN_FLOATS, "inside")))


CRAFTED = {
    "initializer": (lambda: _with_initializer(_plain()), "reads external data"),
    "If sub-graph": (lambda: _branching_model(_constant_graph("then", _external("deep"))), "reads external data"),
    "sub-graph 4 levels deep": (lambda: _branching_model(_constant_graph("then", _external("deeper")), depth=4),
                                "reads external data"),
    "Loop body": (lambda: _loop_model(_external("loop")), "reads external data"),
    "sparse initializer": (lambda: _with_sparse_initializer(_plain()), "reads external data"),
    "sparse attribute": (lambda: _with_sparse_attribute(_plain()), "reads external data"),
    "function body": (lambda: _with_function(_plain(), _external("in_function")), "reads external data"),
    "model-local function": (lambda: _with_function(_plain()), "defines its own function"),
    "contrib domain": (lambda: _with_node(_plain(), "com.microsoft"), "operator domain 'com.microsoft'"),
    "custom domain in a sub-graph": (lambda: _nested_domain("my.custom.ops"), "operator domain 'my.custom.ops'"),
}


def _loop_model(tensor: TensorProto) -> onnx.ModelProto:
    iteration = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    condition = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"]),
                              helper.make_node("Constant", [], ["ten"], value=tensor)], "body",
                             [iteration, condition],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("ten", TensorProto.FLOAT, [10])])
    model = _plain()
    model.graph.node.append(helper.make_node("Loop", ["", "flag"], ["looped"], body=body))
    return model


def _with_node(model: onnx.ModelProto, domain: str) -> onnx.ModelProto:
    model.graph.node.append(helper.make_node("Gelu", ["level0_out"], ["gelu"], domain=domain))
    return model


def _nested_domain(domain: str) -> onnx.ModelProto:
    then = _constant_graph("then", numpy_helper.from_array(TEN_FLOATS, "inside"))
    then.node.append(helper.make_node("Anything", ["then_out"], ["custom"], domain=domain))
    return _branching_model(then, depth=3)


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_models_are_refused_in_one_line(case: str, tmp_path: Path) -> None:
    model = CRAFTED[case][0]()
    model.metadata_props.add(key=ONNX_DESCRIPTION, value=describe("fp32", "fp32").to_json())
    path = tmp_path / "crafted.onnx"
    path.write_bytes(model.SerializeToString())
    (tmp_path / "data.bin").write_bytes(TEN_FLOATS.tobytes())
    expected = CRAFTED[case][1]
    for read in (lambda: load_artifact(path), lambda: read_description(path)):
        with pytest.raises(UnsafeArtifactError, match="refused to load") as refused:
            read()
        assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_litquants_own_onnx_artifacts_are_allowed(tiny_artifacts: dict[str, Path]) -> None:
    for name in ("onnxruntime", "onnxruntime-fp32"):
        assert unsafe_reason(onnx.load(tiny_artifacts[name])) is None
    assert unsafe_reason(_plain()) is None and unsafe_reason(_branching_model(_plain().graph, depth=3)) is None


def test_an_onnx_model_must_match_its_described_precision(tiny_artifacts: dict[str, Path], tmp_path: Path) -> None:
    from litquant.artifacts.errors import ArtifactError
    from litquant.artifacts.onnx_check import int8_operators

    assert "QuantizeLinear" in int8_operators(onnx.load(tiny_artifacts["onnxruntime"]))
    assert int8_operators(onnx.load(tiny_artifacts["onnxruntime-fp32"])) == []
    for name, precision in (("onnxruntime", "fp32"), ("onnxruntime-fp32", "int8")):
        model = onnx.load(tiny_artifacts[name])
        for entry in model.metadata_props:
            if entry.key == ONNX_DESCRIPTION:
                description = json.loads(entry.value)
                entry.value = json.dumps({**description, "precision": precision})
        relabelled = tmp_path / f"{name}.onnx"
        relabelled.write_bytes(model.SerializeToString())
        with pytest.raises(ArtifactError, match=f"described as {precision}"):
            load_artifact(relabelled)
