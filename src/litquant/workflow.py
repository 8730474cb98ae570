"""The whole litquant workflow, as ``litquant demo`` runs it: fit → test → quantize four ways → report.

Example::

    from litquant.cli import LitquantCLI
    from litquant.workflow import run_demo

    cli = LitquantCLI(args=["--trainer.max_epochs=1", "--data.train_size=2000"], run=False)
    run_demo(cli.trainer, cli.model, cli.datamodule, Path("demo"), ["ptq", "onnxruntime"])
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L

from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier
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


def _say(message: str) -> None:
    print(f"\n== {message}", file=sys.stderr, flush=True)


def run_demo(
    trainer: L.Trainer,
    model: MNISTClassifier,
    datamodule: MNISTDataModule,
    out: Path,
    methods: Sequence[str],
    config: QuantizeConfig | None = None,
) -> list[dict]:
    """Fit, test the best checkpoint, then quantize it with each method and write ``report.{md,json}`` in ``out``."""
    from litquant.quantization.report import build_report

    out.mkdir(parents=True, exist_ok=True)
    _say("1/3 training (fp32)")
    trainer.fit(model, datamodule=datamodule)
    best = best_checkpoint(trainer)
    _say(f"2/3 testing the best checkpoint {best}")
    trainer.test(model, datamodule=datamodule, ckpt_path=best)
    _say(f"3/3 quantizing with {', '.join(methods)} and measuring every model")
    entries = build_report(best, datamodule, out, methods, config=config)
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'} and {out / 'report.json'}; logs, table and plots: {trainer.log_dir}")
    return entries
