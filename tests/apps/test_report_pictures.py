"""The demo report's pictures: every model in one size/latency/accuracy plot, and the section that shows it with
the fit's curves and the test's confusion matrix."""

from __future__ import annotations

from pathlib import Path

from litquant.apps.report_pictures import MODELS_PLOT, pictures_section, plot_models

ROWS = [{"method": "fp32", "test_acc": 0.975, "size_bytes": 4_800_000, "latency_ms_b1": 0.8},
        {"method": "ptq", "test_acc": 0.974, "size_bytes": 1_200_000, "latency_ms_b1": 0.3},
        {"method": "qat", "test_acc": None, "size_bytes": None, "latency_ms_b1": None, "error": "quantize: x"}]


def test_every_model_with_numbers_is_one_point_of_one_plot(tmp_path: Path) -> None:
    assert plot_models(ROWS, tmp_path / MODELS_PLOT) == tmp_path / MODELS_PLOT
    assert (tmp_path / MODELS_PLOT).read_bytes()[:4] == b"\x89PNG"
    assert plot_models(ROWS[2:], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_the_section_links_what_exists_relative_to_the_report(tmp_path: Path) -> None:
    run = tmp_path / "mnist" / "version_0"
    run.mkdir(parents=True)
    assert pictures_section(tmp_path, run) == ""
    for name in ("loss.png", "acc.png", "confusion_matrix.png", "confusion_matrix.csv"):
        (run / name).write_bytes(b"x")
    (run / "per_class_accuracy.csv").write_text("class,images,correct,accuracy\n0,10,9,0.9000\n1,0,0,\n")
    plot_models(ROWS, tmp_path / MODELS_PLOT)
    section = pictures_section(tmp_path, run)
    assert "![loss per epoch](mnist/version_0/loss.png) ![acc per epoch](mnist/version_0/acc.png)" in section
    assert "![confusion matrix](mnist/version_0/confusion_matrix.png)" in section
    assert "| Class | 0 | 1 |" in section and "| Accuracy | 0.9000 | – |" in section
    assert f"]({MODELS_PLOT})" in section
