"""Adding a quantization method is one module and one registration: a toy method, registered here, is run by
``quantize``, listed by the CLI's ``--method`` choices and measured in the report like the built-in ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule
from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

from litquant.quantization import METHODS, QuantizeConfig, artifact_name, get_method, quantize
from litquant.quantization.calibration import quantizer_for
from litquant.quantization.methods import PT2EMethod, QuantizeJob, register_method, unregister_method
from litquant.quantization.pt2e import capture, convert_to_program


class ReducedRangePTQ(PT2EMethod):
    """The docs' toy method: PTQ with 7-bit activation ranges (the choice for CPUs without VNNI)."""

    name = "ptq-reduced-range"
    label = "PyTorch PTQ, 7-bit activation range (PT2E)"

    def program(self, job: QuantizeJob) -> tuple[torch.export.ExportedProgram, dict]:
        example = (job.example_batch(),)
        quantizer = quantizer_for(job.calibration, is_qat=False, reduce_range=True)
        prepared = prepare_pt2e(capture(job.net, example), quantizer)
        with torch.no_grad():
            for images, _ in job.datamodule.normalized_batches("train", limit=job.config.calibration_batches):
                prepared(images)
        return convert_to_program(prepared, example), {"calibration_batches": job.config.calibration_batches}


@pytest.fixture
def toy_method():
    method = register_method(ReducedRangePTQ())
    yield method
    unregister_method(method.name)


def test_builtin_methods_in_report_order() -> None:
    assert list(METHODS) == ["ptq", "qat", "lightning-qat", "onnxruntime"]
    assert [artifact_name(m) for m in ("fp32", *METHODS)] == \
        ["fp32.pt2", "ptq.pt2", "qat.pt2", "lightning-qat.pt2", "onnxruntime.int8.onnx"]
    with pytest.raises(ValueError, match="already registered"):
        register_method(type(get_method("ptq"))())


def test_a_registered_method_is_quantized_listed_and_reported(tiny_checkpoint: Path, toy_method, tmp_path: Path,
                                                              mnist_dir: Path) -> None:
    from litquant.apps.report import label, render_markdown
    from litquant.artifacts.loading import load_artifact
    from litquant.cli.options import method_choices
    from litquant.evaluation import evaluate

    checkpoint = tiny_checkpoint
    datamodule = small_datamodule(mnist_dir)
    config = QuantizeConfig(calibration_batches=4, accuracy_batches=1)
    path = quantize("ptq-reduced-range", checkpoint, datamodule, tmp_path, config=config, progress=False)
    assert path == tmp_path / "ptq-reduced-range.pt2"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["method"] == "ptq-reduced-range" and meta["accuracy"]["samples"] == 256
    assert meta["accuracy"]["int8"] >= meta["accuracy"]["fp32"] - 0.02
    model = load_artifact(path, compile=False)
    assert model.description.method == "ptq-reduced-range"
    assert evaluate(model, datamodule, "test", 256, 1) > 0.5
    assert "ptq-reduced-range" in method_choices().__args__
    assert label("ptq-reduced-range") == ReducedRangePTQ.label
    row = {"method": "ptq-reduced-range", "pytorch_inference": True, "trainer_inference": True, "saved": True,
           "reloaded_in_fresh_process": True}
    assert ReducedRangePTQ.label in render_markdown([row])


def test_quantize_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="calibration_batches must be at least 1"):
        QuantizeConfig(calibration_batches=0)
    with pytest.raises(ValueError, match="unknown observer 'kl'"):
        QuantizeConfig(observer="kl")
    calibration = QuantizeConfig(observer="percentile", per_channel=False).calibration
    assert calibration.describe(get_method("ptq").default_observer) == \
        {"observer": "percentile", "percentile": 99.99, "per_channel": False}
