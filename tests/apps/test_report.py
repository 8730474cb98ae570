"""The report: every model gets each boolean by doing it, numbers measured, one failure does not stop it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule

import litquant.apps.report
from litquant.apps.report import REPORT_KEYS, _compare_with_best_fp32, build_report, render_markdown
from litquant.artifacts.inductor import Int8FallbackError
from litquant.artifacts.loading import load_artifact
from litquant.quantization import QuantizeConfig


def test_report_checks_every_model_and_survives_a_failing_method(tiny_checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tiny_checkpoint
    real_quantize = litquant.apps.report.quantize

    def quantize(method, *args, **kwargs):
        if method == "qat":
            raise RuntimeError("simulated failure\nsecond line")
        return real_quantize(method, *args, **kwargs)

    monkeypatch.setattr(litquant.apps.report, "quantize", quantize)
    rows = build_report(checkpoint, small_datamodule(mnist_dir), tmp_path, methods=("ptq", "qat"),
                        config=QuantizeConfig(calibration_batches=2), compile=False, latency_repeats=2, rounds=2,
                        cold_start=False, progress=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == rows
    assert [row["method"] for row in rows] == ["fp32", "ptq", "qat"]
    for row in rows:
        assert set(REPORT_KEYS) <= set(row)
    for row in (rows[0], rows[1]):
        assert "error" not in row, row
        assert row["pytorch_inference"] and row["trainer_inference"] and row["saved"]
        assert row["reloaded_in_fresh_process"]
        assert row["fresh_process_accuracy"] is not None
        assert 0.6 < row["test_acc"] <= 1 and row["trainer_test_acc"] == pytest.approx(row["test_acc"], abs=1e-6)
        assert row["size_bytes"] == (tmp_path / row["artifact"]).stat().st_size
        assert row["latency_ms_b1"] > 0 and row["latency_ms_b256"] > 0
        assert row["latency_p90_ms_b1"] >= row["latency_ms_b1"] and row["spread_b256"] >= 0
        assert row["best_fp32_b1"] in ("fp32", "onnxruntime-fp32") and row["speedup_b1_vs_best_fp32"] > 0
    assert rows[0]["fp32_baselines"] == {}  # no ONNX export without the onnxruntime method; compile=False
    failed = rows[2]
    assert failed["error"] == "quantize: RuntimeError: simulated failure"
    assert not any(failed[key] for key in ("pytorch_inference", "trainer_inference", "saved",
                                           "reloaded_in_fresh_process"))
    assert rows[1]["size_bytes"] <= 0.3 * rows[0]["size_bytes"]
    table = (tmp_path / "report.md").read_text()
    assert "| Pattern | Quantization method | Inference with PyTorch | Inference with PyTorch Lightning (Trainer) " \
           "| Saving model |" in table
    assert table.count("**Unavailable**") == 4  # the failed method's four cells
    assert "simulated failure" in table


def test_unknown_methods_are_refused(tmp_path: Path, mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown quantization method"):
        build_report(tmp_path / "x.ckpt", small_datamodule(mnist_dir), tmp_path, methods=("ptq", "int4"))


def _timed(method: str, b1: float, b256: float, spread: float = 0.05) -> dict:
    return {"method": method, "pytorch_inference": True, "trainer_inference": True, "saved": True,
            "reloaded_in_fresh_process": True, "latency_ms_b1": b1, "latency_ms_b256": b256,
            "latency_p90_ms_b1": b1 * 1.1, "latency_p90_ms_b256": b256 * 1.1, "spread_b1": spread,
            "spread_b256": spread, "cold_start_s": 3.5, "peak_rss_mb": 420.0}


def test_int8_compared_with_the_fastest_fp32_baseline_and_slower_rows_said_in_words() -> None:
    rows = [_timed("fp32", 2.0, 60.0), _timed("ptq", 0.5, 6.0), _timed("qat", 0.9, 8.0, spread=0.45)]
    rows[0]["fp32_baselines"] = {"fp32-compiled": _timed("fp32-compiled", 1.0, 20.0),
                                 "onnxruntime-fp32": _timed("onnxruntime-fp32", 0.6, 30.0)}
    baselines = {"fp32": rows[0], **rows[0]["fp32_baselines"]}
    _compare_with_best_fp32([*rows, *baselines.values()], baselines)
    ptq, qat = rows[1], rows[2]
    # batch 1: ONNX Runtime fp32 is the fastest fp32; batch 256: the compiled fp32 graph (not eager)
    assert (ptq["best_fp32_b1"], ptq["best_fp32_b256"]) == ("onnxruntime-fp32", "fp32-compiled")
    assert ptq["speedup_b1_vs_best_fp32"] == pytest.approx(1.2) and ptq["speedup_b256_vs_best_fp32"] == \
        pytest.approx(3.33)
    assert qat["speedup_b1_vs_best_fp32"] == pytest.approx(0.67)
    table = render_markdown(rows)
    for column in ("b=1 p50 (ms)", "b=1 p90", "b=1 spread", "Speed-up b=1", "b=256 p90", "Cold start (s)",
                   "Peak RSS (MB)", "vs the fastest fp32"):
        assert f"| {column} |" in table
    assert "| fp32, torch.compile (inductor) |" in table and "| ONNX Runtime fp32 |" in table
    qat_line = next(line for line in table.splitlines() if line.startswith("| PyTorch QAT") and "spread" not in line
                    and "Available" not in line)
    assert "**slower than ONNX Runtime fp32 at batch 1** (1.5× its latency)" in qat_line
    ptq_line = next(line for line in table.splitlines() if line.startswith("| PyTorch PTQ") and "Available" not in line)
    assert "faster than every fp32 baseline" in ptq_line and "3.5" in ptq_line and "420" in ptq_line
    assert "**Latencies not stable**" in table and "45%" in table  # the spread is printed while unstable
    assert "a few validation batches" in table and "test split" in table
    rows[2].update(spread_b1=0.05, spread_b256=0.05)
    assert "not stable" not in render_markdown(rows)


def test_compiled_int8_runner_checks_every_recompilation(tiny_artifacts: dict[str, Path]) -> None:
    """The demo's 44 ms int8 row: an int8 graph compiled where inductor does not freeze (gradients on, as a
    recompilation under another grad mode does) silently ran fp32 convolutions and matmuls. Every
    (re)compilation is now checked, and one that would lose the int8 kernels fails loudly."""
    model = load_artifact(tiny_artifacts["ptq"], progress=False)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model(torch.zeros(1, 1, 28, 28))
        torch.set_num_threads(2)  # dynamo recompiles on a thread-count change: checked too
        model(torch.zeros(1, 1, 28, 28))
    finally:
        torch.set_num_threads(previous)
    checks = model._runner.compilations
    assert len(checks) == 2 and all(c["int8_conv_calls"] >= c["conv_layers"] == 2 for c in checks)
    with pytest.raises(Int8FallbackError, match="gradients enabled"):
        model._runner(torch.zeros(1, 1, 28, 28))  # outside LoadedModel's inference mode


def test_onnxruntime_sessions_do_not_spin_beside_torch(tiny_artifacts: dict[str, Path]) -> None:
    """ONNX Runtime's idle intra-op threads spinning took the cores PyTorch's OpenMP threads waited for."""
    import litquant.artifacts.loading

    sessions = []
    real = __import__("onnxruntime").InferenceSession

    def recording(*args, **kwargs):
        sessions.append(real(*args, **kwargs))
        return sessions[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("onnxruntime.InferenceSession", recording)
        model = litquant.artifacts.loading.load_artifact(tiny_artifacts["onnxruntime"], threads=2, progress=False)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    options = sessions[0].get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_every_timed_model_names_itself_so_the_baseline_rows_render(tmp_path: Path) -> None:
    """The fp32 baselines (fp32 compiled, ONNX Runtime fp32) reach the speed table only through their timings: a
    demo with the onnxruntime method failed while rendering ``report.md`` when those carried no name."""
    from litquant.apps.report import _speed_table, _time_all

    def model(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 10)

    loaders = {name: (tmp_path / f"{name}.pt2", lambda: model) for name in ("fp32", "fp32-compiled")}
    timings = _time_all(loaders, compile=False, threads=1, rounds=1, calls=1, cold_start=False, progress=False)
    assert {name: entry["method"] for name, entry in timings.items()} == {"fp32": "fp32",
                                                                         "fp32-compiled": "fp32-compiled"}
    table = "\n".join(_speed_table(list(timings.values())))
    assert "| fp32, torch.compile (inductor) |" in table
