"""Each quantization method makes a small, self-described int8 artifact about as accurate as fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule

from litquant.artifacts.loading import load_artifact
from litquant.cpu import choose_reduce_range, cpu_info
from litquant.evaluation import evaluate
from litquant.quantization import METHODS, quantize
from litquant.quantization.onnx_runtime import CANDIDATES, eligible_candidates

#: Largest test-accuracy drop of an int8 model against fp32 on 256 test images of the small model: two
#: images. (PTQ and ONNX Runtime keep the fp32 weights; the QAT methods fine-tune them a few steps.)
TOLERANCE = 2 / 256


@pytest.fixture(scope="module")
def made(tiny_artifacts: dict[str, Path]) -> dict[str, Path]:
    return tiny_artifacts


@pytest.fixture(scope="module")
def fp32_accuracy(made: dict[str, Path], mnist_dir: Path) -> float:
    return evaluate(load_artifact(made["fp32"], compile=False), small_datamodule(mnist_dir))


def test_unknown_method_is_refused(tmp_path: Path, mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="choose one of ptq, qat, lightning-qat, onnxruntime"):
        quantize("dynamic", tmp_path / "missing.ckpt", small_datamodule(mnist_dir), tmp_path)


@pytest.mark.parametrize("method", METHODS)
def test_artifact_and_sidecar(made: dict[str, Path], method: str) -> None:
    path = made[method]
    assert path.name == ("onnxruntime.int8.onnx" if method == "onnxruntime" else f"{method}.pt2")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["method"] == method and meta["precision"] == "int8"
    assert meta["size_bytes"] == path.stat().st_size
    assert {"torch", "torchao", "onnxruntime", "lightning"} <= set(meta["versions"])
    assert meta["input"]["normalization"] == {"formula": "(pixel / 255 - mean) / std", "mean": 0.1307,
                                              "std": 0.3081}
    assert meta["input"]["shape"] == ["batch", 1, 28, 28]
    accuracy = meta["accuracy"]
    assert accuracy["samples"] == 256 and accuracy["int8"] >= accuracy["fp32"] - 3 * TOLERANCE


@pytest.mark.parametrize("method", METHODS)
def test_artifact_is_at_most_30_percent_of_fp32(made: dict[str, Path], method: str) -> None:
    fp32 = made["onnxruntime-fp32" if method == "onnxruntime" else "fp32"].stat().st_size
    assert made[method].stat().st_size <= 0.30 * fp32


def test_pt2_keeps_no_fp32_weights(made: dict[str, Path]) -> None:
    for method in ("ptq", "qat", "lightning-qat"):
        program = torch.export.load(made[method])
        matrices = {name: t.dtype for name, t in program.state_dict.items() if t.dim() > 1}
        assert len(matrices) == 4 and set(matrices.values()) == {torch.int8}, (method, matrices)


@pytest.mark.parametrize("method", METHODS)
def test_int8_accuracy_close_to_fp32(made: dict[str, Path], mnist_dir: Path, fp32_accuracy: float,
                                     method: str) -> None:
    accuracy = evaluate(load_artifact(made[method], compile=False), small_datamodule(mnist_dir))
    assert accuracy >= fp32_accuracy - TOLERANCE, (method, accuracy, fp32_accuracy)


def test_onnxruntime_weight_format_is_chosen_by_a_check(made: dict[str, Path]) -> None:
    choice = json.loads(made["onnxruntime"].with_suffix(".json").read_text())["onnxruntime"]
    candidates = choice["check"]["candidates"]
    assert set(candidates) == set(CANDIDATES)
    # the formats eligible on this CPU: safe without VNNI where it has none, full-range ones where it has VNNI
    eligible = eligible_candidates(choose_reduce_range().reduce_range)
    assert choice["eligible"] == eligible and choice["weights"] in eligible
    assert CANDIDATES[choice["weights"]][2] or cpu_info().has_vnni, "without VNNI the format must not saturate"
    assert candidates[choice["weights"]]["agreement"] == max(candidates[name]["agreement"] for name in eligible)
    assert candidates[choice["weights"]]["agreement"] >= 0.98


def test_plain_qat_fine_tunes(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, made: dict[str, Path],
                              mnist_dir: Path) -> None:
    """The plain-loop QAT changes the weights (it trained), PTQ does not (same biases as fp32)."""
    fp32 = torch.export.load(made["fp32"]).state_dict
    ptq = torch.export.load(made["ptq"]).state_dict
    qat = torch.export.load(made["qat"]).state_dict
    torch.testing.assert_close(ptq["fc2.bias"], fp32["fc2.bias"])
    assert not torch.equal(qat["fc2.bias"], fp32["fc2.bias"])
    meta = json.loads(made["qat"].with_suffix(".json").read_text())
    assert meta["fine_tuning"] == {"epochs": 1, "max_steps": 4, "lr": 1e-4}
    assert tiny_checkpoint.is_file()
