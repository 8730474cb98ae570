"""Calibration choices: every observer and weight granularity, for each method, round-trips through a saved
artifact reloaded in a fresh process with the same accuracy, and is recorded in the artifact's description."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule

from litquant.artifacts.loading import load_artifact
from litquant.callbacks import QuantizationAwareTraining
from litquant.evaluation import evaluate
from litquant.fresh_process import check_all_in_fresh_process
from litquant.quantization import CalibrationConfig, QuantizeConfig, quantize
from litquant.quantization.calibration import OBSERVERS, PercentileObserver

#: (method, config): every observer with PTQ, per-tensor weights, and one non-default choice per other method.
CASES = [("ptq", CalibrationConfig(observer)) for observer in OBSERVERS] + [
    ("ptq", CalibrationConfig("minmax", per_channel=False)),
    ("qat", CalibrationConfig("percentile", percentile=99.9, per_channel=False)),
    ("lightning-qat", CalibrationConfig("histogram")),
    ("onnxruntime", CalibrationConfig("percentile", per_channel=False)),
    ("onnxruntime", CalibrationConfig("histogram")),
]


def _case_id(case: tuple[str, CalibrationConfig]) -> str:
    method, config = case
    return f"{method}-{config.observer}-{'per_channel' if config.per_channel else 'per_tensor'}"


@pytest.fixture(scope="module")
def made(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, Path]:
    checkpoint = tiny_checkpoint
    root = tmp_path_factory.mktemp("calibration")
    return {_case_id(case): quantize(case[0], checkpoint, small_datamodule(mnist_dir), root / _case_id(case),
                                     config=QuantizeConfig(calibration_batches=4, qat_max_steps=4,
                                                           **dataclasses.asdict(case[1])), progress=False)
            for case in CASES}


def test_each_choice_is_recorded_and_round_trips_in_a_fresh_process(made: dict[str, Path], mnist_dir: Path) -> None:
    paths = [made[_case_id(case)] for case in CASES]
    fresh = check_all_in_fresh_process(paths, mnist_dir, batches=1, batch_size=256)
    for (_method, config), path, result in zip(CASES, paths, fresh, strict=True):
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["calibration"] == {"observer": config.observer,
                                       "percentile": config.percentile if config.observer == "percentile" else None,
                                       "per_channel": config.per_channel}, path
        assert result["ok"], (path, result["error"])
        here = evaluate(load_artifact(path, compile=False), small_datamodule(mnist_dir), "test", 256, 1)
        assert result["accuracy"] == pytest.approx(here, abs=1e-9), path
        assert here > 0.5, path  # a working model, not a collapsed one


def test_weight_granularity_reaches_the_int8_graph(made: dict[str, Path]) -> None:
    def weight_dequantizers(path: Path) -> set[str]:
        graph = load_artifact(path, compile=False).module.graph
        return {node.target.__name__.split(".")[0] for node in graph.nodes
                if node.op == "call_function" and "dequantize" in str(node.target)
                and node.args[0].op == "get_attr"}

    assert weight_dequantizers(made["ptq-minmax-per_channel"]) == {"dequantize_per_channel"}
    assert weight_dequantizers(made["ptq-minmax-per_tensor"]) == {"dequantize_per_tensor"}
    assert weight_dequantizers(made["qat-percentile-per_tensor"]) == {"dequantize_per_tensor"}


def test_onnxruntime_records_its_calibration_method(made: dict[str, Path]) -> None:
    percentile = json.loads(made["onnxruntime-percentile-per_tensor"].with_suffix(".json").read_text())
    entropy = json.loads(made["onnxruntime-histogram-per_channel"].with_suffix(".json").read_text())
    assert (percentile["onnxruntime"]["calibrate_method"], percentile["onnxruntime"]["per_channel"]) == \
        ("Percentile", False)
    assert (entropy["onnxruntime"]["calibrate_method"], entropy["onnxruntime"]["per_channel"]) == ("Entropy", True)


def test_percentile_observer_ignores_rare_outliers() -> None:
    values = torch.cat([torch.linspace(0, 1, 100_000), torch.tensor([1000.0])])
    observer = PercentileObserver(percentile=99.9, dtype=torch.quint8)
    observer(values)
    assert 0.99 < float(observer.max_val) < 1.01
    scale, _ = observer.calculate_qparams()
    assert float(scale) < 1.01 / 255 * 1.01
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(percentile=40)


def test_callback_observer_type_uses_the_same_names() -> None:
    from torchao.quantization.pt2e import FakeQuantize

    callback = QuantizationAwareTraining(observer_type="percentile",
                                         calibration=CalibrationConfig(percentile=99.5, per_channel=False))
    config = callback.build_quantizer().global_config
    activation = config.input_activation.observer_or_fake_quant_ctr()
    assert isinstance(activation, FakeQuantize) and isinstance(activation.activation_post_process, PercentileObserver)
    assert activation.activation_post_process.percentile == 99.5
    assert config.weight.qscheme == torch.per_tensor_symmetric
    assert QuantizationAwareTraining(observer_type="average").calibration.observer == "moving_average"
    with pytest.raises(ValueError, match="observer_type 'kl'"):
        QuantizationAwareTraining(observer_type="kl")
    with pytest.raises(ValueError, match="give one of them"):
        QuantizationAwareTraining(observer_type="minmax", calibration=CalibrationConfig(observer="histogram"))


@pytest.mark.parametrize(("args", "needle"), [
    (["--quant.observer=kl"], "unknown --quant.observer 'kl'"),
    (["--quant.percentile=20"], "--quant.percentile must be in (50, 100]"),
])
def test_bad_calibration_options_give_one_line(tmp_path: Path, args: list[str], needle: str,
                                               capsys: pytest.CaptureFixture) -> None:
    from litquant.cli import main

    code = main(["quantize", f"--ckpt_path={tmp_path / 'missing.ckpt'}", "--method=ptq", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
