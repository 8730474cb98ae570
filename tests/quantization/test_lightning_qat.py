"""Method ``lightning-qat``: the callback in a ``Trainer`` gets the whole calibration, ``fp32_layers`` included."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule

from litquant.artifacts.loading import load_artifact, read_description
from litquant.quantization import QuantizeConfig, quantize


def fp32_layers_of(path: Path) -> list[str]:
    """The conv/linear layers of a ``.pt2`` whose weight is not dequantized from int8: the ones left in fp32."""
    graph = load_artifact(path, compile=False, progress=False).module.graph
    layers = [n for n in graph.nodes if n.op == "call_function"
              and n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)]
    dequantized = [getattr(n.args[1], "op", None) == "call_function"
                   and getattr(n.args[1].target, "__name__", "").startswith("dequantize") for n in layers]
    names = ["conv1", "conv2", "fc1", "fc2"]
    return [name for name, int8 in zip(names, dequantized, strict=True) if not int8]


@pytest.mark.parametrize("method", ["qat", "lightning-qat"])
def test_fp32_layers_stay_fp32_in_the_program_as_the_description_says(method: str, tiny_checkpoint: Path,
                                                                       tmp_path: Path, mnist_dir: Path) -> None:
    """``--quant.fp32_layers '[conv2]'`` leaves conv2 in fp32 in the int8 program, not only in the description."""
    config = QuantizeConfig(fp32_layers=("conv2",), qat_max_steps=2, accuracy_batches=0)
    path = quantize(method, tiny_checkpoint, small_datamodule(mnist_dir), tmp_path, config=config, progress=False)
    assert read_description(path).extra["calibration"]["fp32_layers"] == ["conv2"]
    assert fp32_layers_of(path) == ["conv2"]
