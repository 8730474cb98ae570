"""The whole litquant workflow, as ``litquant demo`` runs it: fit → test → quantize four ways → report, with the
fit's curves, the test's confusion matrix and every model's size, latency and accuracy drawn in it.

Example::

    from litquant.apps.workflow import run_demo
    from litquant.cli.lightning import LitquantCLI

    cli = LitquantCLI(args=["--trainer.max_epochs=1", "--data.train_size=2000"], run=False)
    run_demo(cli.trainer, cli.model, cli.datamodule, Path("demo"), ["ptq", "onnxruntime"])
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L

from litquant.apps.report import build_report
from litquant.apps.report_pictures import MODELS_PLOT, pictures_section, plot_models
from litquant.data import MNISTDataModule
from litquant.files import write_text
from litquant.model import MNISTClassifier
from litquant.quantization import artifact_name
from litquant.quantization.config import QuantizeConfig

#: The metric whose best checkpoint is quantized, by the demo and the benchmarks alike: accuracy is what
#: quantization must keep.
QUANTIZED_CHECKPOINT_MONITOR = "val_acc"


def best_checkpoint(trainer: L.Trainer, monitor: str = QUANTIZED_CHECKPOINT_MONITOR) -> str:
    """The best checkpoint of the fit's ``ModelCheckpoint`` that monitors ``monitor`` (litquant's CLI has one
    for ``val_acc`` and one for ``val_loss``)."""
    callback = next((cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None) == monitor), None)
    if callback is None or not callback.best_model_path:
        raise RuntimeError(f"training produced no best-{monitor} checkpoint: check --trainer.max_epochs and the "
                           "checkpoint options")
    return callback.best_model_path


#: Test accuracy of ``litquant fit``'s default recipe on all 55,000 training images
#: (``benchmarks/results/recipe_search.*.md``), which README quotes; the demo's shorter fit says it is not that.
FULL_FIT = "litquant fit's default, 2 epochs on all 55,000 training images, reaches 99.0% test accuracy"


def _say(message: str) -> None:
    print(f"\n== {message}", file=sys.stderr, flush=True)


def precision_label(precision: str | int | None) -> str:
    """``fp32`` for Lightning's full precision (``32-true``, ``32``), else the precision as Lightning names it
    (``bf16-mixed``...)."""
    return "fp32" if str(precision) in ("32", "32-true") else str(precision)


def training_summary(trainer: L.Trainer, datamodule: MNISTDataModule) -> str:
    """``2 epochs on 10,000 training images (--data.train_size), bf16-mixed``: what the demo's fit trains."""
    images = f"{datamodule.train_size:,}" if datamodule.train_size else "all"
    count, unit = ((trainer.max_epochs, "epoch") if trainer.max_epochs not in (None, -1)
                   else (trainer.max_steps, "step"))
    length = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{length} on {images} training images (--data.train_size), {precision_label(trainer.precision)}"


def write_samples(datamodule: MNISTDataModule, folder: Path, per_class: int = 1) -> list[Path]:
    """The first ``per_class`` test images of every class as PNG files in ``folder`` (``3_test00018.png``: label 3,
    test image 18), images to try ``litquant predict`` and ``litquant serve`` on."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    test = datamodule.split("test")
    written: list[Path] = []
    for label in range(len(datamodule.spec.classes)):
        for index in (test.labels == label).nonzero().flatten()[:per_class].tolist():
            path = folder / f"{label}_test{index:05d}.png"
            Image.fromarray(test.images[index].reshape(test.images.shape[-2:]).numpy(), mode="L").save(path)
            written.append(path)
    return written


def _this_run(trainer: L.Trainer, datamodule: MNISTDataModule, best: str) -> str:
    """The report's section on the data and the fit behind the numbers above it."""
    fallback = (datamodule.source or "").startswith("offline fallback")
    lines = ["", "## This run", "",
             f"- Data: {datamodule.source}" + (" — **the offline fallback: accuracies are not comparable to full "
                                              "MNIST**" if fallback else ""),
             f"- Training: {training_summary(trainer, datamodule)}; {FULL_FIT} (pass `--data.train_size 55000` "
             "for that fit).",
             f"- Quantized checkpoint: `{best}` (best val_acc)."]
    return "\n".join(lines) + "\n"


def run_demo(
    trainer: L.Trainer,
    model: MNISTClassifier,
    datamodule: MNISTDataModule,
    out: Path,
    methods: Sequence[str],
    config: QuantizeConfig | None = None,
) -> list[dict]:
    """Fit, test the best checkpoint, then quantize it with each method and write ``report.{md,json}`` in ``out``,
    with :data:`~litquant.apps.report_pictures.MODELS_PLOT` and the fit's and the test's pictures shown in it."""
    out.mkdir(parents=True, exist_ok=True)
    print(f"demo: a short fit, {training_summary(trainer, datamodule)}, so its accuracy stays below the full "
          f"fit's: {FULL_FIT}.", file=sys.stderr, flush=True)
    _say(f"1/3 training ({precision_label(trainer.precision)})")
    trainer.fit(model, datamodule=datamodule)
    best = best_checkpoint(trainer)
    _say(f"2/3 testing the best checkpoint {best}")
    trainer.test(model, datamodule=datamodule, ckpt_path=best)
    _say(f"3/3 quantizing with {', '.join(methods)} and measuring every model")
    entries = build_report(best, datamodule, out, methods, config=config)
    plot_models(entries, out / MODELS_PLOT)
    report = out / "report.md"
    run_folder = Path(trainer.log_dir) if trainer.log_dir else None
    write_text(report, report.read_text() + pictures_section(out, run_folder) + _this_run(trainer, datamodule, best))
    samples = write_samples(datamodule, out / "samples")
    print(report.read_text())
    print(f"report: {report} and {out / 'report.json'}; logs, table, plots and confusion matrix: {trainer.log_dir}")
    model = next((path for m in methods if (path := out / artifact_name(m)).is_file()), out / "fp32.pt2")
    print(f"{len(samples)} test digits to try: litquant predict --model {model} {out / 'samples'}")
    return entries
