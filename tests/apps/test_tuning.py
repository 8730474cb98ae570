"""``--method auto``: on the ordinary model the PTQ grid meets the budget and the fastest candidate is kept; on
the stress case plain PTQ misses and leaving the layer the per-layer report flags (conv2) in fp32 recovers it;
the kept artifact reloads with the same accuracy in a fresh process; an impossible budget exits 1 in one line
with the most accurate candidate kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_litquant
from quantization_helpers import small_datamodule

from litquant.apps.inspect import inspect_artifact
from litquant.apps.stress import outlier_checkpoint
from litquant.apps.tuning import tune
from litquant.apps.tuning_log import Candidate, choose
from litquant.artifacts.loading import load_artifact, read_description
from litquant.evaluation import evaluate
from litquant.fresh_process import check_in_fresh_process
from litquant.quantization import QuantizeConfig, get_method, quantize
from litquant.quantization.calibration import CalibrationConfig

FAST_CONFIG = QuantizeConfig(calibration_batches=4, val_batches=1)
FAST = dict(test_batches=1, progress=False)


def test_ordinary_model_meets_the_budget_with_the_fastest_candidate(tiny_checkpoint: Path, mnist_dir: Path,
                                                                     tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint
    result = tune(checkpoint, small_datamodule(mnist_dir), tmp_path, FAST_CONFIG, max_drop=0.1, latency_tolerance=0.0,
                  observers=("minmax", "histogram"), **FAST)
    log = json.loads((tmp_path / "tuning.json").read_text())
    assert result.met and log["met"]
    rows = log["candidates"]
    assert {r["stage"] for r in rows} == {"grid"}  # no QAT or fallback once the grid met the budget
    met = [r for r in rows if r["status"] in ("met", "kept")]
    assert met and all(r["drop_points"] <= 0.1 and r["latency_ms"] > 0 for r in met)
    kept = [r for r in rows if r["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["latency_ms"] == min(r["latency_ms"] for r in met)
    assert {r["calibration"]["per_channel"] for r in met} == {True, False}  # per-tensor tried where per-channel met
    description = read_description(result.path)
    assert description.extra["tuning"]["chosen"] == kept[0]["name"] == log["chosen"]
    assert description.extra["calibration"] == kept[0]["calibration"]
    assert log["artifact"]["path"] == "auto.pt2" and "| **kept**" in (tmp_path / "tuning.md").read_text()
    assert description.accuracy["split"] == "val" and "test" in description.accuracy


def test_choose_keeps_the_fastest_and_breaks_near_ties_by_accuracy() -> None:
    def candidate(latency: float, accuracy: float, status: str = "met", fp32: tuple = ()) -> Candidate:
        return Candidate(get_method("ptq"), CalibrationConfig("minmax", fp32_layers=fp32), "grid",
                         val_accuracy=accuracy, latency_ms=latency, status=status)

    slow, fast, missed = candidate(2.0, 0.99), candidate(1.0, 0.95), candidate(0.5, 0.99, "missed")
    assert choose([slow, fast, missed], 0.0) is fast
    close = candidate(1.04, 0.97)
    assert choose([slow, fast, close], 0.05) is close and choose([slow, fast, close], 0.0) is fast
    assert choose([missed]) is None


@pytest.fixture(scope="module")
def stress(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict:
    checkpoint = tiny_checkpoint
    root = tmp_path_factory.mktemp("tuning-stress")
    broken = outlier_checkpoint(checkpoint, root / "stress.ckpt")
    result = tune(broken, small_datamodule(mnist_dir), root / "auto", FAST_CONFIG.replace(qat_max_steps=0),
                  max_drop=0.1, **FAST)
    return {"checkpoint": broken, "root": root, "result": result}


def test_stress_case_recovers_by_leaving_the_flagged_layer_in_fp32(stress: dict, mnist_dir: Path) -> None:
    result = stress["result"]
    log = result.log
    grid = [r for r in log["candidates"] if r["stage"] == "grid"]
    assert grid and all(r["status"] == "missed" and r["drop_points"] > 0.5 for r in grid)
    assert result.met and result.chosen.calibration.fp32_layers == ("conv2",)
    assert result.chosen.drop_points <= 0.1
    # the per-layer report of plain PTQ flags the same layer the tuner measured as the most sensitive
    ptq = quantize("ptq", stress["checkpoint"], small_datamodule(mnist_dir), stress["root"] / "ptq",
                   config=QuantizeConfig(calibration_batches=4, accuracy_batches=0), progress=False)
    report = inspect_artifact(ptq, stress["checkpoint"], small_datamodule(mnist_dir), batches=1)
    first_flagged = next(row["layer"] for row in report["layers"] if row["flagged"])
    assert result.chosen.calibration.fp32_layers == (first_flagged,)
    described = read_description(result.path).extra["calibration"]
    assert described["fp32_layers"] == ["conv2"]
    after = inspect_artifact(result.path, stress["checkpoint"], small_datamodule(mnist_dir), batches=1)
    assert "conv2" in after["not_quantized"] and "conv2" not in [row["layer"] for row in after["layers"]]


def test_kept_artifact_reloads_with_the_same_accuracy_in_a_fresh_process(stress: dict, mnist_dir: Path) -> None:
    path = stress["result"].path
    here = evaluate(load_artifact(path, compile=False), small_datamodule(mnist_dir), "test", 256, 1)
    fresh = check_in_fresh_process(path, mnist_dir, batches=1)
    assert fresh["ok"], fresh["error"]
    assert fresh["accuracy"] == pytest.approx(here, abs=1e-9)


def test_impossible_budget_exits_1_in_one_line_and_keeps_the_best(tiny_checkpoint: Path, mnist_dir: Path,
                                                                  tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint
    out = tmp_path / "auto"
    data = [f"--data.data_dir={mnist_dir}", "--data.train_size=1024", "--data.val_size=256",
            "--data.test_size=256", "--data.download=false"]
    result = run_litquant("quantize", "--method", "auto", "--max_drop", "-5", f"--ckpt_path={checkpoint}",
                          f"--out={out}", "--calibration_batches=2", "--quant.observer=minmax", "--quant.val_batches=1",
                          "--qat_max_steps=0", "--quant.max_fp32_layers=1", *data, check=False, timeout=900)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(errors) == 1 and "no candidate is within --max_drop -5 points" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    log = json.loads((out / "tuning.json").read_text())
    assert log["met"] is False
    kept = [r for r in log["candidates"] if r["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["val_accuracy"] == max(r["val_accuracy"] for r in log["candidates"])
    assert {r["stage"] for r in log["candidates"]} == {"grid", "sensitivity"}  # the fallback was tried
    assert read_description(out / "auto.pt2").extra["tuning"]["met"] is False


def test_fp32_layers_must_name_a_layer(tiny_checkpoint: Path, mnist_dir: Path, tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint
    with pytest.raises(ValueError, match="conv3: no such conv/linear layer; the model has conv1, conv2"):
        quantize("ptq", checkpoint, small_datamodule(mnist_dir), tmp_path,
                 config=QuantizeConfig(fp32_layers=("conv3",), calibration_batches=1), progress=False)
    with pytest.raises(ValueError, match="not to onnxruntime"):
        quantize("onnxruntime", checkpoint, small_datamodule(mnist_dir), tmp_path,
                 config=QuantizeConfig(fp32_layers=("conv2",), calibration_batches=1), progress=False)
    assert not list(tmp_path.glob("*.pt2")) and not list(tmp_path.glob("*int8.onnx"))
