"""What ``litquant demo`` says about its own run: the precision it trains in, that its fit is a short one, the
data it ran on (the offline fallback said loudly), the sample digits it leaves to try, and the pictures its
report shows."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import numpy as np
from helpers import TINY
from PIL import Image

from litquant.apps import workflow
from litquant.apps.workflow import FULL_FIT, _this_run, precision_label, training_summary, write_samples
from litquant.data import MNISTDataModule


def _trainer(**options) -> L.Trainer:
    return L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                     **options)


def test_the_training_label_follows_the_precision_it_trains_in() -> None:
    assert precision_label(_trainer(precision="32-true").precision) == "fp32"
    assert precision_label(_trainer(precision="bf16-mixed").precision) == "bf16-mixed"


def test_the_demo_says_how_short_its_fit_is(make_datamodule) -> None:
    summary = training_summary(_trainer(max_epochs=1, precision="bf16-mixed"), make_datamodule(train_size=300))
    assert summary == "1 epoch on 300 training images (--data.train_size), bf16-mixed"
    assert training_summary(_trainer(max_steps=7), make_datamodule(train_size=None)).startswith(
        "7 steps on all training images")


def test_samples_are_real_test_digits_one_per_class(make_datamodule, tmp_path: Path) -> None:
    datamodule = make_datamodule()
    paths = write_samples(datamodule, tmp_path / "samples")
    test = datamodule.split("test")
    assert [p.name.split("_")[0] for p in paths] == [str(digit) for digit in range(10)]
    for path in paths:
        index = int(path.stem.split("_test")[1])
        assert int(test.labels[index]) == int(path.name[0])
        assert np.array_equal(np.asarray(Image.open(path)), test.images[index].reshape(28, 28).numpy())


def test_the_report_says_when_it_ran_on_the_offline_fallback(make_datamodule) -> None:
    """No data folder, an empty cache, no network (the conftest's): the fallback, said in the report."""
    fallback = MNISTDataModule(train_size=300)
    fallback.setup("fit")
    section = _this_run(_trainer(max_epochs=2), fallback, "best.ckpt")
    assert "the offline fallback: accuracies are not comparable to full MNIST" in section
    assert f"2 epochs on 300 training images (--data.train_size), fp32; {FULL_FIT}" in section
    real = make_datamodule()
    real.setup("fit")
    assert "fallback" not in _this_run(_trainer(max_epochs=2), real, "best.ckpt")


def test_the_report_shows_the_curves_the_confusion_matrix_and_every_model(tmp_path: Path, mnist_dir: Path,
                                                                          monkeypatch, capsys) -> None:
    """The demo's own fit and test (tiny), its quantization and measurements stood in for by two rows; it
    announces the precision it trains in, the one chosen for this CPU (bf16-mixed where bf16 is native)."""
    from litquant.cli.demo import DemoCLI
    from litquant.cpu import choose_precision

    def measured(best, datamodule, out: Path, methods, config=None) -> list[dict]:
        (out / "report.md").write_text("# Quantization report\n")
        return [{"method": "fp32", "test_acc": 0.9, "size_bytes": 4_800_000, "latency_ms_b1": 0.8},
                {"method": "ptq", "test_acc": 0.89, "size_bytes": 1_200_000, "latency_ms_b1": 0.3}]

    monkeypatch.setattr(workflow, "build_report", measured)
    monkeypatch.chdir(tmp_path)
    cli = DemoCLI([f"--data.data_dir={mnist_dir}", "--methods=ptq", "--trainer.max_epochs=1", *TINY])
    workflow.run_demo(cli.trainer, cli.model, cli.datamodule, Path("demo"), ["ptq"])
    chosen = choose_precision().precision
    assert str(cli.trainer.precision) == chosen
    assert f"== 1/3 training ({precision_label(chosen)})" in capsys.readouterr().err
    report = (tmp_path / "demo" / "report.md").read_text()
    run = tmp_path / "demo" / "mnist" / "version_0"
    for name in ("loss.png", "acc.png", "confusion_matrix.png"):
        assert f"(mnist/version_0/{name})" in report and (run / name).stat().st_size > 5_000, name
    assert "| Accuracy |" in report and (run / "per_class_accuracy.csv").is_file()
    assert "](models.png)" in report and (tmp_path / "demo" / "models.png").stat().st_size > 5_000
    assert report.index("## Pictures") < report.index("## This run")
