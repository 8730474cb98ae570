"""The report: every model gets each boolean by doing it, numbers measured, one failure does not stop it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quantization_helpers import small_datamodule

import litquant.quantization.report
from litquant.quantization import QuantizeConfig
from litquant.quantization.report import REPORT_KEYS, build_report


def test_report_checks_every_model_and_survives_a_failing_method(tiny_checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tiny_checkpoint
    real_quantize = litquant.quantization.report.quantize

    def quantize(method, *args, **kwargs):
        if method == "qat":
            raise RuntimeError("simulated failure\nsecond line")
        return real_quantize(method, *args, **kwargs)

    monkeypatch.setattr(litquant.quantization.report, "quantize", quantize)
    rows = build_report(checkpoint, small_datamodule(mnist_dir), tmp_path, methods=("ptq", "qat"),
                        config=QuantizeConfig(calibration_batches=2), compile=False, latency_repeats=2, progress=False)
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
