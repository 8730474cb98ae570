"""ONNX artifacts load and run in ONNX Runtime without PyTorch: numpy arrays in, numpy arrays out; torch tensors in,
torch tensors out."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import run_python
from onnx import TensorProto, helper, numpy_helper

from litquant.artifacts.description import describe
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.saving import save_onnx

#: Data settings as a model trained by litquant carries them (reading them must not import PyTorch either).
DATA = {"dataset": "mnist", "data_dir": "data", "val_size": 5000, "train_size": None, "test_size": None, "seed": 42,
        "batch_size": 64, "augment_shift": 0}


def _linear_onnx() -> bytes:
    """A linear classifier of ``[batch, 1, 28, 28]`` images into 10 logits: ``Flatten``, ``MatMul``, ``Add``."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((784, 10)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "bias")
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weight"], ["mm"]),
             helper.make_node("Add", ["mm", "bias"], ["logits"])]
    graph = helper.make_graph(nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
                              [weight, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


@pytest.fixture
def linear_onnx(tmp_path: Path) -> Path:
    description = describe("linear", "fp32").replace(data=DATA)
    return save_onnx(_linear_onnx(), tmp_path / "linear.onnx", description)


def _expected(path: Path, images: np.ndarray) -> np.ndarray:
    graph = onnx.load(path).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return images.reshape(len(images), -1) @ weights["weight"] + weights["bias"]


def test_numpy_in_numpy_out_and_torch_in_torch_out(linear_onnx: Path) -> None:
    import torch

    model = load_artifact(linear_onnx)
    images = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    logits = model(images)
    assert isinstance(logits, np.ndarray) and logits.shape == (3, 10)
    np.testing.assert_allclose(logits, _expected(linear_onnx, images), rtol=1e-4, atol=1e-4)
    tensor = model(torch.from_numpy(images))
    assert isinstance(tensor, torch.Tensor)
    torch.testing.assert_close(tensor, torch.from_numpy(logits))
    assert model.description.data == DATA


def test_an_onnx_artifact_loads_and_runs_without_importing_torch(linear_onnx: Path) -> None:
    """What ``litquant predict --model x.onnx`` needs to start fast: ``import torch`` alone takes over a second."""
    script = ("import sys\n"
              "import numpy as np\n"
              "import litquant.artifacts\n"
              "from litquant.artifacts.loading import load_artifact, read_description\n"
              "path = sys.argv[1]\n"
              "assert read_description(path).data['dataset'] == 'mnist'\n"
              "model = load_artifact(path, threads=1)\n"
              "logits = model(np.zeros((2, 1, 28, 28), np.float32))\n"
              "assert logits.shape == (2, 10), logits.shape\n"
              "loaded = sorted(name for name in sys.modules if name == 'torch' or name.startswith('torch.'))\n"
              "print('torch modules:', loaded)\n"
              "assert not loaded\n")
    result = run_python("-c", script, str(linear_onnx))
    assert "torch modules: []" in result.stdout


def test_a_real_onnx_runtime_artifact_runs_without_importing_torch(tiny_artifacts: dict[str, Path]) -> None:
    """The same for the int8 artifact ``--method onnxruntime`` writes, data settings inside."""
    script = ("import sys\n"
              "import numpy as np\n"
              "from litquant.artifacts.loading import load_artifact\n"
              "model = load_artifact(sys.argv[1])\n"
              "assert model.description.data, 'no data settings to read'\n"
              "assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)\n"
              "assert 'torch' not in sys.modules\n")
    run_python("-c", script, str(tiny_artifacts["onnxruntime"]))
    assert "torch" in sys.modules  # this process, for contrast, has it
