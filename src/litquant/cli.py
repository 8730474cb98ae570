"""The ``litquant`` command line, in Lightning's conventions.

``fit | validate | test | predict`` are :class:`~lightning.pytorch.cli.LightningCLI` subcommands: every Trainer, model
and data option is a flag (``--trainer.max_epochs 3``, ``--model.lr 1e-3``, ``--data.data_dir DIR``) or a YAML entry
(``--config run.yaml``). ``litquant test --ckpt_path BEST`` is the seed's ``--load_model``.

The other commands use the same ``--data.*`` flags:

- ``litquant predict --ckpt_path CKPT|--model ARTIFACT IMAGE_OR_FOLDER...`` classifies image files.
- ``litquant quantize --ckpt_path CKPT --method ptq|qat|lightning-qat|onnxruntime --out DIR`` writes an int8 artifact.
- ``litquant evaluate ARTIFACT_OR_CKPT`` prints its test accuracy (plain PyTorch, no Trainer).
- ``litquant info callbacks|loggers`` lists what Lightning ships.
- ``litquant demo --out DIR`` runs the whole workflow: fit, test, quantize four ways, report.
- ``litquant serve MODEL...`` serves models over HTTP with a draw-a-digit page (:mod:`litquant.serve`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litquant import ignore_library_internal_warnings
from litquant.callbacks import InterruptedCheckpoint, MetricsReport
from litquant.checkpoints import register_safe_globals
from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
OWN_COMMANDS = ("demo", "quantize", "evaluate", "info", "serve")
DEFAULT_ROOT_DIR = "runs"

CHECKPOINT_DEFAULTS = {
    "checkpoint_val_loss": {
        "monitor": "val_loss",
        "mode": "min",
        "filename": "epoch={epoch:02d}-val_loss={val_loss:.4f}",
        "save_last": True,
    },
    "checkpoint_val_acc": {
        "monitor": "val_acc",
        "mode": "max",
        "filename": "epoch={epoch:02d}-val_acc={val_acc:.4f}",
    },
}


class LitquantCLI(LightningCLI):
    """LightningCLI with litquant's defaults: CSV logs, two top-3 checkpoints plus ``last.ckpt``, tables, plots.

    Checkpoints go to ``<default_root_dir>/checkpoints`` (stable across runs, so ``--ckpt_path last`` resumes),
    logs to ``<default_root_dir>/<name>/version_N`` with ``metrics.csv``, the per-epoch table and the plots.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        super().__init__(
            MNISTClassifier,
            MNISTDataModule,
            seed_everything_default=42,
            trainer_defaults={
                "default_root_dir": DEFAULT_ROOT_DIR,
                "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                           "init_args": {"save_dir": "", "name": "mnist"}},
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "litquant", "description": __doc__.split("\n\n")[0]},
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key, defaults in CHECKPOINT_DEFAULTS.items():
            parser.add_lightning_class_args(ModelCheckpoint, key)
            parser.set_defaults({f"{key}.{name}": value for name, value in defaults.items()})
            parser.set_defaults({f"{key}.save_top_k": 3, f"{key}.auto_insert_metric_name": False})
        parser.add_lightning_class_args(MetricsReport, "metrics_report")

    def before_instantiate_classes(self) -> None:
        """Load checkpoints weights-only; resolve paths that default to the Trainer's ``default_root_dir``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("weights_only") is None and "weights_only" in config:
            config.weights_only = True  # never execute code from a checkpoint, resuming a fit included
        root = Path(config.trainer.default_root_dir or DEFAULT_ROOT_DIR)
        logger = config.trainer.logger
        if getattr(logger, "class_path", "").endswith("CSVLogger") and not logger.init_args.save_dir:
            logger.init_args.save_dir = str(root)
        for key in CHECKPOINT_DEFAULTS:
            if config[key].dirpath is None:
                config[key].dirpath = str(root / "checkpoints")

    def instantiate_trainer(self, **kwargs):
        """Add ``interrupted.ckpt``, saved on an exception or SIGINT/SIGTERM.

        ``--ckpt_path last`` resumes from the newer of ``interrupted.ckpt`` and ``last.ckpt``.
        """
        trainer = super().instantiate_trainer(**kwargs)
        dirpath = next(cb.dirpath for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint))
        trainer.callbacks.append(InterruptedCheckpoint(dirpath))
        return trainer

    def after_fit(self) -> None:
        """Say where the best checkpoints are: ``litquant test --ckpt_path <best>`` evaluates one."""
        for callback in self.trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
                print(f"best {callback.monitor}: {callback.best_model_path} ({float(callback.best_model_score):.4f})")


# -- commands outside LightningCLI ---------------------------------------------------------------------------------
class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _data_parser(prog: str, description: str) -> LightningArgumentParser:
    parser = LightningArgumentParser(prog=prog, description=description)
    parser.add_class_arguments(MNISTDataModule, "data")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def _datamodule(config) -> MNISTDataModule:
    return MNISTDataModule(**config.data.as_dict())


def _load_model(ckpt_path: str | None, artifact: str | None):
    """A callable model from a Lightning checkpoint or an int8/fp32 artifact."""
    if bool(ckpt_path) == bool(artifact):
        raise UserError("give exactly one of --ckpt_path CKPT (a Lightning checkpoint) or --model ARTIFACT")
    if ckpt_path:
        from litquant.checkpoints import load_classifier

        return load_classifier(ckpt_path).eval()
    from litquant.runtime import load_artifact

    return load_artifact(artifact)


def _load_any(path: str):
    return _load_model(path, None) if str(path).endswith(".ckpt") else _load_model(None, path)


def cmd_predict_images(argv: list[str]) -> None:
    parser = _data_parser("litquant predict", "Classify image files (PNG/JPEG..., any size, colour or grey), "
                          "framed as the images of --data.dataset are.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--ckpt_path", help="a Lightning checkpoint (.ckpt)")
    parser.add_argument("--model", help="an exported artifact (.pt2 or .onnx)")
    config = parser.parse_args(argv)
    from litquant.images import classify, format_predictions, load_images

    dm = _datamodule(config)
    paths, images = load_images(config.images, dm.spec.framing)
    model = _load_model(config.ckpt_path, config.model)
    predictions = classify(model, images, dm.normalize)
    print(format_predictions(paths, predictions, dm.spec.classes))


def cmd_evaluate(argv: list[str]) -> None:
    parser = _data_parser("litquant evaluate", "Test accuracy of a checkpoint or artifact, with a plain PyTorch loop.")
    parser.add_argument("model", help="a .pt2/.onnx artifact or a .ckpt checkpoint")
    parser.add_argument("--batch_size", type=int, default=256)
    config = parser.parse_args(argv)
    from litquant.runtime import evaluate

    model = _load_any(config.model)
    accuracy = evaluate(model, _datamodule(config), split="test", batch_size=config.batch_size)
    print(f"test_acc {accuracy:.4f}  ({config.model})")


def cmd_quantize(argv: list[str]) -> None:
    from litquant.quantization import METHODS, quantize

    parser = _data_parser("litquant quantize", "Quantize a trained checkpoint to an int8 artifact.")
    parser.add_argument("--ckpt_path", required=True, help="the fp32 Lightning checkpoint to quantize")
    parser.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    parser.add_argument("--out", default="quantized", help="output folder")
    parser.add_argument("--calibration_batches", type=int, default=32, help="training batches for calibration")
    parser.add_argument("--qat_epochs", type=int, default=1, help="fine-tuning epochs of the QAT methods")
    parser.add_argument("--qat_max_steps", type=int, default=None, help="cap on QAT fine-tuning steps")
    config = parser.parse_args(argv)
    if config.method not in METHODS:
        raise UserError(f"unknown --method {config.method!r}: choose one of {', '.join(METHODS)}")
    _require_file(config.ckpt_path, "checkpoint")
    artifact = quantize(
        config.method, config.ckpt_path, _datamodule(config), config.out,
        calibration_batches=config.calibration_batches, qat_epochs=config.qat_epochs,
        qat_max_steps=config.qat_max_steps,
    )
    print(f"wrote {artifact}")


def cmd_info(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="litquant info", description="List Lightning's callbacks or loggers.")
    parser.add_argument("what", choices=("callbacks", "loggers"))
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    config = parser.parse_args(argv)
    from litquant.catalog import callback_catalog, format_catalog, logger_catalog

    entries = callback_catalog() if config.what == "callbacks" else logger_catalog()
    print(format_catalog(entries, config.format))


DEMO_HELP = """Run the whole workflow into --out: fit, test the fp32 model, quantize it four ways
(ptq, qat, lightning-qat, onnxruntime), check every model with plain PyTorch, a Trainer and a fresh process,
and write report.md / report.json, the per-epoch table and the plots.

Every option of `litquant fit` is accepted too (see `litquant fit --help`), e.g.
  litquant demo --out demo --data.data_dir ~/data --trainer.max_epochs 3 --data.train_size 20000
Small defaults: --trainer.max_epochs 2 --data.train_size 10000."""


def cmd_demo(argv: list[str]) -> None:
    from litquant.quantization import METHODS
    from litquant.workflow import run_demo

    parser = argparse.ArgumentParser(prog="litquant demo", description=DEMO_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo", help="output folder (default: demo)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated quantization methods")
    parser.add_argument("--calibration_batches", type=int, default=32)
    parser.add_argument("--qat_epochs", type=int, default=1)
    parser.add_argument("--qat_max_steps", type=int, default=None)
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    config, rest = parser.parse_known_args(argv)
    methods = [m for m in config.methods.split(",") if m]
    if unknown := [m for m in methods if m not in METHODS]:
        raise UserError(f"unknown method {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    defaults = ["--trainer.max_epochs=2", "--data.train_size=10000", f"--trainer.default_root_dir={config.out}"]
    cli = LitquantCLI(args=defaults + rest, run=False)
    run_demo(cli.trainer, cli.model, cli.datamodule, Path(config.out), methods,
             calibration_batches=config.calibration_batches, qat_epochs=config.qat_epochs,
             qat_max_steps=config.qat_max_steps)


def _require_file(path: str, what: str) -> None:
    if not Path(path).is_file():
        raise UserError(f"{what} not found: {path}")


def cmd_serve(argv: list[str]) -> None:
    from litquant.serve.cli import main as serve

    serve(argv)


COMMANDS = {"demo": cmd_demo, "quantize": cmd_quantize, "evaluate": cmd_evaluate, "info": cmd_info,
            "serve": cmd_serve}

USAGE = """usage: litquant {fit,validate,test,predict,demo,quantize,evaluate,info,serve} [options]

Lightning on MNIST end to end, and fast int8 models from it.

  fit        train (every option: litquant fit --help)       e.g. litquant fit --trainer.max_epochs 3
  validate   validate a checkpoint                             litquant validate --ckpt_path CKPT
  test       test a checkpoint (the seed's --load_model)       litquant test --ckpt_path CKPT
  predict    classify image files, or the test set             litquant predict --ckpt_path CKPT digit.png
  demo       fit, test, quantize four ways, report             litquant demo --out demo
  quantize   int8 artifact from a checkpoint                   litquant quantize --ckpt_path CKPT --method ptq
  evaluate   test accuracy of an artifact or checkpoint        litquant evaluate quantized/ptq.pt2
  info       list Lightning's callbacks or loggers             litquant info callbacks
  serve      HTTP API and a draw-a-digit page (LitServe)       litquant serve demo/ptq.pt2 demo/fp32.pt2

Data: --data.data_dir DIR (default: $LITQUANT_DATA or ~/.cache/litquant); downloaded when missing.
Add --debug to any command for full tracebacks."""


def _wants_image_predict(argv: list[str]) -> bool:
    if "--model" in argv or any(a.startswith("--model=") for a in argv):
        return True
    positional, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = "=" not in arg and arg not in ("--debug", "-h", "--help")
        else:
            positional.append(arg)
    return bool(positional)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ignore_library_internal_warnings()
    register_safe_globals()
    debug = "--debug" in argv or os.environ.get("LITQUANT_DEBUG") == "1"
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], [a for a in argv[1:] if a != "--debug"]
    try:
        if command == "predict" and _wants_image_predict(rest):
            cmd_predict_images(rest)
        elif command in COMMANDS:
            COMMANDS[command](rest)
        elif command in LIGHTNING_COMMANDS:
            LitquantCLI(args=[command, *rest])
        else:
            raise UserError(f"unknown command {command!r}: run `litquant --help` for the list")
    except KeyboardInterrupt:
        print("litquant: interrupted", file=sys.stderr)
        return 130
    except SIGTERMException:
        print("litquant: stopped by SIGTERM; a fit resumes with --ckpt_path last", file=sys.stderr)
        return 128 + signal.SIGTERM
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except Exception as error:  # noqa: BLE001 - the top level turns every failure into one line
        if debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"litquant: error: {message}", file=sys.stderr)
        print("(run again with --debug for the full traceback)", file=sys.stderr)
        return 2 if isinstance(error, UserError | ValueError | FileNotFoundError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
