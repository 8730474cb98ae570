"""The ``litquant`` command line, in Lightning's conventions: :func:`main` reads the command and imports only the
module that runs it (``--version`` and ``--help`` import no torch).

``fit | validate | test | predict`` are :class:`~lightning.pytorch.cli.LightningCLI` subcommands
(:mod:`litquant.cli.lightning`): every Trainer, model
and data option is a flag (``--trainer.max_epochs 3``, ``--model.lr 1e-3``, ``--data.data_dir DIR``) or a YAML entry
(``--config run.yaml``). ``litquant test --ckpt_path BEST`` is the original tutorial's ``--load_model``.

The other commands use the same ``--data.*`` flags:

- ``litquant predict --ckpt_path CKPT|--model ARTIFACT IMAGE_OR_FOLDER...`` classifies image files.
- ``litquant quantize --ckpt_path CKPT --method ptq|qat|lightning-qat|onnxruntime --out DIR`` writes an int8 artifact;
  ``--method auto --max_drop 0.1`` the fastest one within 0.1 points of fp32 validation accuracy (exit 1 if none).
  Beside the artifact, ``<artifact stem>.quantize_config.yaml``: the configuration it ran with (``--config`` takes it).
- ``litquant evaluate ARTIFACT_OR_CKPT`` prints its test accuracy (a plain loop, no Trainer; an ``.onnx`` without
  PyTorch).
- ``litquant describe ARTIFACT`` prints the description it carries (:mod:`litquant.describe_artifact`).
- ``litquant inspect ARTIFACT --ckpt_path CKPT --out DIR`` compares each int8 layer with fp32 (SQNR, scales).
- ``litquant info callbacks|loggers`` lists what Lightning ships.
- ``litquant demo --out DIR`` runs the whole workflow: fit, test, quantize four ways, report.
- ``litquant serve MODEL...`` serves models over HTTP with a draw-a-digit page (:mod:`litquant.serve`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence

from litquant import __version__, quiet_libraries
from litquant.errors import FitComplete, UserError, exit_code

#: Each command outside LightningCLI: the module that runs it (imported only for that command) and its function.
COMMANDS = {"demo": ("demo", "cmd_demo"), "quantize": ("quantize", "cmd_quantize"),
            "evaluate": ("artifact_commands", "cmd_evaluate"), "describe": ("artifact_commands", "cmd_describe"),
            "inspect": ("artifact_commands", "cmd_inspect"), "bench": ("bench", "cmd_bench"),
            "serve": ("serve", "cmd_serve"), "info": ("info", "cmd_info")}
#: The commands LightningCLI runs (:mod:`litquant.cli.lightning`), ``predict`` of image files aside.
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

USAGE = """usage: litquant {fit,validate,test,predict,demo,quantize,evaluate,describe,inspect,bench,serve,info} ...

Lightning on MNIST end to end, and fast int8 models from it.

  fit        train (every option: litquant fit --help)       e.g. litquant fit --trainer.max_epochs 3
  validate   validate a checkpoint                             litquant validate --ckpt_path CKPT
  test       test a checkpoint (the tutorial's --load_model)   litquant test --ckpt_path CKPT
  predict    classify image files, or the test set             litquant predict --ckpt_path CKPT digit.png
  demo       fit, test, quantize four ways, report             litquant demo --out demo
  quantize   int8 artifact from a checkpoint                   litquant quantize --ckpt_path CKPT --method ptq
             (--method auto --max_drop 0.1: the fastest within 0.1 points of fp32 validation accuracy)
             (--model CLASS --data CLASS: your own LightningModule and LightningDataModule)
  evaluate   test accuracy of an artifact or checkpoint        litquant evaluate quantized/ptq.pt2
  describe   what an artifact says about itself                litquant describe quantized/ptq.pt2
  inspect    per-layer int8 error against fp32                 litquant inspect quantized/ptq.pt2 --ckpt_path CKPT
  bench      latency, cold start, memory of models             litquant bench quantized/ptq.pt2 --threads 1 2
  info       list Lightning's callbacks or loggers             litquant info callbacks
  serve      HTTP API and a draw-a-digit page (LitServe)       litquant serve demo/ptq.pt2 demo/fp32.pt2

A fit always starts a new run (runs/mnist/version_N, checkpoints in its checkpoints/ folder); it resumes only
with --ckpt_path PATH or --ckpt_path last (the newest run's last.ckpt or interrupted.ckpt).
`litquant predict --ckpt_path CKPT` without images predicts the test set into runs/predict/version_N/predictions.csv.
Data: --data.data_dir DIR (default: $LITQUANT_DATA or ~/.cache/litquant); downloaded when missing.
Add --debug to any command for full tracebacks and every library message. --version prints the version."""



def _command(module: str, name: str) -> Callable[[list[str]], int | None]:
    """``litquant.cli.<module>.<name>``, imported now: what the command needs and nothing more."""
    import importlib

    return getattr(importlib.import_module(f"litquant.cli.{module}"), name)


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


class _Interrupted:
    """Ctrl-C seen: Lightning handles the ``KeyboardInterrupt`` of a fit (saving ``interrupted.ckpt``) and then
    exits with code 1; this flag lets :func:`main` report it as an interruption (exit 130) all the same."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame) -> None:
        cls.seen = True
        raise KeyboardInterrupt


def _quiet_libraries() -> None:
    """Keep messages a user cannot act on out of normal output (``--debug`` shows them all): library-internal
    warnings and log lines, LightningCLI's note on ``args``, and warnings' source paths inside libraries."""
    quiet_libraries()
    warnings.filterwarnings("ignore", r"LightningCLI's args parameter is intended", UserWarning)
    # validate/test/predict leave the fit's ModelCheckpoint callbacks out on purpose (they would write nothing)
    warnings.filterwarnings("ignore", r"Be aware that when using `ckpt_path`, callbacks used to create the "
                            "checkpoint need to be provided", UserWarning)


def _one_line(error: BaseException) -> str:
    from litquant.images import printable

    if isinstance(error, PermissionError) and error.filename:
        return f"cannot access {printable(error.filename)}: permission denied; check its permissions"
    text = str(error).strip()
    return printable(text.splitlines()[0]) if text else type(error).__name__



def _sigterm_exceptions() -> tuple[type[BaseException], ...]:
    """Lightning's ``SIGTERMException`` where Lightning has been imported (a command that never imports it cannot
    raise it, and importing it here would cost every command Lightning's start-up)."""
    module = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return (module.SIGTERMException,) if module else ()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LITQUANT_DEBUG") == "1"
    if not debug:
        _quiet_libraries()
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"litquant {__version__}")
        return 0
    command, rest = argv[0], [a for a in argv[1:] if a != "--debug"]
    resume_hint = "; the fit resumes with --ckpt_path last" if command == "fit" else ""
    _Interrupted.seen = False
    previous_handler = signal.getsignal(signal.SIGINT)
    catch_sigint = (previous_handler is signal.default_int_handler
                    and threading.current_thread() is threading.main_thread())
    if catch_sigint:
        signal.signal(signal.SIGINT, _Interrupted.handler)
    try:
        if command == "predict" and _wants_image_predict(rest):
            return _command("artifact_commands", "cmd_predict_images")(rest)
        elif command in COMMANDS:
            _command(*COMMANDS[command])(rest)
        elif command in LIGHTNING_COMMANDS:
            _command("lightning", "run_lightning_command")(command, rest)
        else:
            raise UserError(f"unknown command {command!r}: run `litquant --help` for the list")
    except FitComplete as complete:
        print(f"litquant: {complete}")
    except KeyboardInterrupt:
        print(f"litquant: interrupted{resume_hint}", file=sys.stderr)
        return 128 + signal.SIGINT
    except _sigterm_exceptions():
        print(f"litquant: stopped by SIGTERM{resume_hint}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except SystemExit as exit_:
        if _Interrupted.seen:
            print(f"litquant: interrupted{resume_hint}", file=sys.stderr)
            return 128 + signal.SIGINT
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except Exception as error:  # noqa: BLE001 - the top level turns every failure into one line
        if debug:
            raise
        print(f"litquant: error: {_one_line(error)}", file=sys.stderr)
        print("(run again with --debug for the full traceback)", file=sys.stderr)
        return exit_code(error)
    finally:
        if catch_sigint:  # also after Lightning set it to "ignore" while shutting down
            signal.signal(signal.SIGINT, previous_handler)
    return 0
