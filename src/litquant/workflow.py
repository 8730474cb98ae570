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
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not best:
        raise RuntimeError("training produced no checkpoint: check --trainer.max_epochs and the checkpoint options")
    _say(f"2/3 testing the best checkpoint {best}")
    trainer.test(model, datamodule=datamodule, ckpt_path=best)
    _say(f"3/3 quantizing with {', '.join(methods)} and measuring every model")
    entries = build_report(best, datamodule, out, methods, config=config)
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'} and {out / 'report.json'}; logs, table and plots: {trainer.log_dir}")
    return entries
