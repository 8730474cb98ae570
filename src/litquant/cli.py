"""The ``litquant`` command line, in Lightning's conventions.

``fit | validate | test | predict`` are :class:`~lightning.pytorch.cli.LightningCLI` subcommands: every Trainer, model
and data option is a flag (``--trainer.max_epochs 3``, ``--model.lr 1e-3``, ``--data.data_dir DIR``) or a YAML entry
(``--config run.yaml``). ``litquant test --ckpt_path BEST`` is the original tutorial's ``--load_model``.

The other commands use the same ``--data.*`` flags:

- ``litquant predict --ckpt_path CKPT|--model ARTIFACT IMAGE_OR_FOLDER...`` classifies image files.
- ``litquant quantize --ckpt_path CKPT --method ptq|qat|lightning-qat|onnxruntime --out DIR`` writes an int8 artifact;
  ``--method auto --max_drop 0.1`` the fastest one within 0.1 points of fp32 validation accuracy (exit 1 if none).
  Beside the artifact, ``<artifact stem>.quantize_config.yaml``: the configuration it ran with (``--config`` takes it).
- ``litquant evaluate ARTIFACT_OR_CKPT`` prints its test accuracy (plain PyTorch, no Trainer).
- ``litquant describe ARTIFACT`` prints the description it carries (:mod:`litquant.describe_artifact`).
- ``litquant inspect ARTIFACT --ckpt_path CKPT --out DIR`` compares each int8 layer with fp32 (SQNR, scales).
- ``litquant info callbacks|loggers`` lists what Lightning ships.
- ``litquant demo --out DIR`` runs the whole workflow: fit, test, quantize four ways, report.
- ``litquant serve MODEL...`` serves models over HTTP with a draw-a-digit page (:mod:`litquant.serve`).
"""

from __future__ import annotations

import csv
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NoReturn

from jsonargparse import ActionConfigFile, DefaultHelpFormatter, Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litquant import __version__, quiet_libraries
from litquant.callbacks import InterruptedCheckpoint, MetricsReport
from litquant.checkpoints import FIT_RUNS_DIR, register_safe_globals, resume_checkpoint, unsafe_checkpoint_error
from litquant.data import MNISTDataModule
from litquant.errors import USER_ERRORS, FitComplete, UserError
from litquant.model import MNISTClassifier

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
OWN_COMMANDS = ("demo", "quantize", "evaluate", "describe", "inspect", "bench", "serve", "info")
DEFAULT_ROOT_DIR = str(FIT_RUNS_DIR.parent)
#: ``litquant fit``'s length when ``--trainer.max_epochs`` is not given: the shortest one-cycle fit of the default
#: recipe that reaches 99.0% test accuracy (``benchmarks/recipe_search.py``; Lightning's own default, 1000 epochs,
#: would stretch the one-cycle schedule over a fit nobody waits for).
DEFAULT_MAX_EPOCHS = 2
#: runs of `litquant fit` are <root>/mnist/version_N; other commands log to <root>/<command>
FIT_LOG_NAME = FIT_RUNS_DIR.name

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


RESUME_HELP = ("resume a fit: a .ckpt PATH, or `last` (in the newest run folder <root>/mnist/version_N/checkpoints, "
               "last.ckpt or interrupted.ckpt, whichever is newer). Without it every fit starts fresh, as a new run")


def _choice_error(message: str) -> str | None:
    """jsonargparse's several lines on a value outside a ``Literal[...]`` (or ``Literal[...] | bool``) as one:
    ``unknown --key 'value': choose one of a, b, c`` (``..., true, false``); ``None`` for other errors."""
    import re

    key = re.search(r'Parser key "([^"]+)"', message)
    choices = re.search(r"Literal\[([^\]]*)\]", message)
    value = re.search(r"(?:Got value|Given value): (.*)", message)
    if not (key and choices and value):
        return None
    names = [name.strip().strip("'\"") for name in choices.group(1).split(",")]
    if re.search(r"Subtypes: \[.*<class 'bool'>", message):  # Literal[...] | bool, e.g. --quant.reduce_range
        names += ["true", "false"]
    names = ", ".join(names)
    return f"unknown --{key.group(1)} {value.group(1).strip()!r}: choose one of {names}"


def _missing_logger_error(message: str) -> str | None:
    """jsonargparse's ``Does not validate against any of the Union subtypes`` for a logger whose package is
    not installed, as one line: ``--trainer.logger TensorBoardLogger: tensorboard ... is not installed: pip
    install 'litquant[tensorboard]'``; ``None`` for other errors."""
    import re

    from litquant.catalog import missing_logger_backend

    for class_path in re.findall(r"Problem with given class_path '([\w.]+Logger)'", message):
        if missing := missing_logger_backend(class_path):
            return f"--trainer.logger {class_path.rsplit('.', 1)[-1]}: {missing}"
    return None


class HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, with descriptions kept as written and each default in its own ``(default: X)``;
    the docstrings' reStructuredText literals (double backticks) shown as single backticks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "".join(indent + line for line in text.replace("``", "`").splitlines(keepends=True))

    def start_section(self, heading: str | None) -> None:
        super().start_section(heading.replace("``", "`") if heading else heading)

    def _get_help_string(self, action) -> str:
        return (super()._get_help_string(action).replace(", default: %(default)s)", ") (default: %(default)s)")
                .replace("``", "`"))


def _did_you_mean(parser, message: str) -> str | None:
    """``unrecognized arguments: --quant.observr minmax`` as ``unknown option --quant.observr: did you mean
    --quant.observer?`` when an option of ``parser`` is close to it; ``None`` otherwise."""
    import difflib
    import re

    found = re.search(r"nrecognized arguments: (--[\w.-]+)", message)
    if not found:
        return None
    given = found.group(1).split("=", 1)[0]
    options = [option for option in parser._option_string_actions if option.startswith("--")]
    close = difflib.get_close_matches(given, options, n=1, cutoff=0.75)
    return f"unknown option {given}: did you mean {close[0]}?" if close else None


class ShortErrorParser(LightningArgumentParser):
    """A parser whose errors are a few lines (what is wrong, where to read the options), not the whole usage."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        if missing := _missing_logger_error(str(message)):
            sys.stderr.write(f"{prog}: error: {missing}\n")
            raise SystemExit(2)
        if suggestion := _did_you_mean(parser, str(message)):
            sys.stderr.write(f"{prog}: error: {suggestion}\n(run `{prog} --help` for the options)\n")
            raise SystemExit(2)
        lines = [_choice_error(str(message)) or line for line in str(message).strip().splitlines() if line.strip()]
        lines = lines[:1] if _choice_error(str(message)) else lines
        if len(lines) > 8:
            lines = [*lines[:8], "..."]
        sys.stderr.write(f"{prog}: error: " + "\n".join(lines) + f"\n(run `{prog} --help` for the options)\n")
        raise SystemExit(2)


def _default_length(trainer) -> None:
    """A fit given no length (``--trainer.max_epochs``, ``--trainer.max_steps`` or ``--trainer.max_time``) trains
    :data:`DEFAULT_MAX_EPOCHS`; one given any of them is left to them, as in Lightning. Resolved here, not as a
    parser default, so that ``--print_config`` writes ``max_epochs: null`` and its file behaves as the command."""
    if trainer.max_epochs is None and trainer.max_steps in (None, -1) and trainer.max_time is None:
        trainer.max_epochs = DEFAULT_MAX_EPOCHS


class LitquantCLI(LightningCLI):
    """LightningCLI with litquant's defaults: CSV logs, two top-3 checkpoints plus ``last.ckpt``, tables, plots.

    Every ``fit`` is a new run: logs go to ``<default_root_dir>/mnist/version_N`` (``metrics.csv``, the per-epoch
    table, the plots, ``config.yaml``) and its checkpoints to ``<default_root_dir>/mnist/version_N/checkpoints``,
    so an earlier run's files are never overwritten. A fit resumes only from ``--ckpt_path PATH`` or
    ``--ckpt_path last`` (the newest run's ``last.ckpt``, or its ``interrupted.ckpt`` when that is newer).
    ``validate``/``test``/``predict`` log to ``<default_root_dir>/<command>/version_N``.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, *, prog: str = "litquant",
                 description: str | None = None) -> None:
        super().__init__(
            MNISTClassifier,
            MNISTDataModule,
            seed_everything_default=42,
            parser_class=ShortErrorParser,
            trainer_defaults={
                "default_root_dir": DEFAULT_ROOT_DIR,
                "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                           "init_args": {"save_dir": "", "name": FIT_LOG_NAME}},
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": prog, "description": description or __doc__.split("\n\n")[0]},
            args=args,
            run=run,
        )

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        self._given_args = sys.argv[1:] if args is None else args  # what the user typed, for given_options
        super().parse_arguments(parser, args)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for action in parser._actions:
            if action.dest == "trainer.max_epochs":
                action.help = (f"Stop training after this many epochs. Default: {DEFAULT_MAX_EPOCHS} when neither "
                               "--trainer.max_steps nor --trainer.max_time is given, else as those say.")
        for key, defaults in CHECKPOINT_DEFAULTS.items():
            parser.add_lightning_class_args(ModelCheckpoint, key)
            parser.set_defaults({f"{key}.{name}": value for name, value in defaults.items()})
            parser.set_defaults({f"{key}.save_top_k": 3, f"{key}.auto_insert_metric_name": False})
        parser.add_lightning_class_args(MetricsReport, "metrics_report")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:
            if "--ckpt_path" in action.option_strings:
                action.help = (RESUME_HELP if subcommand == "fit" else
                               "the checkpoint to load: a .ckpt PATH, or `last` (the newest fit run's last.ckpt)")
        return parser

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` to a file first, so that, as for a path, the model's hyper-parameters
        come from it; a checkpoint that holds code is refused with one line."""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is not None and config.get("ckpt_path") == "last":
            runs_dir = _fit_runs_dir(config)
            found = resume_checkpoint(runs_dir)
            if found is None:
                raise UserError(f"--ckpt_path last: no last.ckpt or interrupted.ckpt in {runs_dir}/version_*/"
                                "checkpoints; run `litquant fit` without --ckpt_path first")
            config.ckpt_path = str(found)
            if subcommand == "fit":
                print(f"resuming from {found}", file=sys.stderr)
        try:
            super()._parse_ckpt_path()
        except pickle.UnpicklingError as error:
            raise unsafe_checkpoint_error(config.ckpt_path, error) from None
        if subcommand in ("validate", "test", "predict") and config.get("ckpt_path"):
            given = given_options(self.parser, self._given_args).get(subcommand) or {}
            self.config = use_checkpoint_data(self.parser, self.config, config.ckpt_path, given.get("data") or {},
                                              prefix=subcommand)

    def before_instantiate_classes(self) -> None:
        """Load checkpoints weights-only; logs and checkpoints of a fit in a new run folder, other commands' logs
        in ``<root>/<command>``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("weights_only") is None and "weights_only" in config:
            config.weights_only = True  # never execute code from a checkpoint, resuming a fit included
        for logger in _logger_configs(config):
            _log_under_root(logger, _root_dir(config))
            if self.subcommand not in (None, "fit") and logger.init_args.get("name") == FIT_LOG_NAME:
                logger.init_args.name = self.subcommand  # not to be taken for a training run
        if self.subcommand in ("fit", None):
            _default_length(config.trainer)
        if self.subcommand == "fit" and config.get("ckpt_path"):  # before any run folder is made
            from litquant.checkpoints import finished_fit

            if message := finished_fit(config.ckpt_path, config.trainer.max_epochs, config.trainer.max_steps):
                raise FitComplete(message)
        if self.subcommand in ("fit", None) and config.trainer.precision is None:
            self._choose_precision(config)
        elif self.subcommand in ("fit", None) and "bf16" in str(config.trainer.precision):
            self._note_emulated_bf16(config)

    def instantiate_classes(self) -> None:
        """A logger whose package is missing: one line with the install command, exit 2."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            if missing := _missing_logger_error(str(error)):
                raise UserError(missing) from None
            raise

    @staticmethod
    def _choose_precision(config) -> None:
        """Without ``--trainer.precision``: bf16-mixed (+ channels_last) where it runs natively, else fp32."""
        from litquant.cpu import choose_precision

        choice = choose_precision(accelerator=str(config.trainer.accelerator or "auto"))
        config.trainer.precision = choice.precision
        if choice.channels_last and "channels_last" in config.model:
            config.model.channels_last = True
        print(f"precision {choice.precision}{' + channels_last' if choice.channels_last else ''}: {choice.reason} "
              "(--trainer.precision overrides)", flush=True)

    @staticmethod
    def _note_emulated_bf16(config) -> None:
        """``--trainer.precision`` bf16 where the choice would be fp32: one line saying bf16 is emulated here."""
        from litquant.cpu import choose_precision

        choice = choose_precision(accelerator=str(config.trainer.accelerator or "auto"))
        if "bf16" not in choice.precision:
            print(f"precision {config.trainer.precision} as given (--trainer.precision), though {choice.reason}",
                  flush=True)

    def instantiate_trainer(self, **kwargs):
        """For a fit, add :class:`~litquant.callbacks.InterruptedCheckpoint`: ``interrupted.ckpt`` in the run's
        checkpoint folder, saved when a running fit stops on an exception or SIGINT/SIGTERM."""
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand in (None, "fit"):
            trainer.callbacks.append(InterruptedCheckpoint())
        else:  # validate/test/predict save no checkpoints (and need not restore the fit's checkpoint callbacks)
            trainer.callbacks = [cb for cb in trainer.callbacks if not isinstance(cb, ModelCheckpoint)]
        return trainer

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; a run that fails before writing any file (bad data, a refused resume) leaves no empty
        ``version_N`` folder behind."""
        try:
            super()._run_subcommand(subcommand)
        except pickle.UnpicklingError as error:  # Lightning's own weights-only load of --ckpt_path
            _remove_if_empty(self.trainer.log_dir)
            ckpt_path = self.config[subcommand].get("ckpt_path")
            raise unsafe_checkpoint_error(ckpt_path, error) from None
        except BaseException:
            _remove_if_empty(self.trainer.log_dir)
            raise

    def after_fit(self) -> None:
        """Say where the best checkpoints are: ``litquant test --ckpt_path <best>`` evaluates one."""
        if not self.trainer.is_global_zero:
            return
        for callback in self.trainer.checkpoint_callbacks:
            score = getattr(callback, "best_model_score", None)
            if isinstance(callback, ModelCheckpoint) and callback.best_model_path and score is not None:
                print(f"best {callback.monitor}: {callback.best_model_path} ({float(callback.best_model_score):.4f})")

    def after_predict(self) -> None:
        """Write the test-set predictions, beside each image's true label, to ``<log_dir>/predictions.csv`` and say
        where they went."""
        batches = self.trainer.predict_loop.predictions
        if not self.trainer.is_global_zero or not batches:
            return
        import io

        import torch

        from litquant.files import write_text

        probabilities = torch.cat([torch.as_tensor(batch) for batch in batches])
        confidence, labels = probabilities.max(dim=1)
        truth = self.datamodule.split("test").labels.tolist()  # what predict_dataloader served, in order
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["index", "label", "confidence", "true_label"])
        writer.writerows((index, label, f"{value:.6f}", true)
                         for index, (label, value, true) in enumerate(zip(labels.tolist(), confidence.tolist(), truth,
                                                                          strict=True)))
        target = write_text(Path(self.trainer.log_dir or self.trainer.default_root_dir) / "predictions.csv",
                            table.getvalue())
        print(f"predicted {len(labels)} test images: {target}")


#: Files a run writes before it starts, which alone make no result worth keeping.
RUN_SETTINGS_FILES = ("config.yaml", "hparams.yaml")


def _remove_if_empty(folder: str | os.PathLike | None) -> None:
    """Remove the run folder ``folder`` when nothing but :data:`RUN_SETTINGS_FILES` lies under it (what a run
    that failed before training or testing anything leaves: no metrics, no checkpoint)."""
    import shutil

    if not folder or not Path(folder).is_dir():
        return
    if not any(path.is_file() and path.name not in RUN_SETTINGS_FILES for path in Path(folder).rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)


def _root_dir(config) -> Path:
    return Path(config.trainer.default_root_dir or DEFAULT_ROOT_DIR)


def _logger_configs(config) -> list:
    """The ``--trainer.logger`` entries given as classes (one, or a list), not ``True``/``False``/``None``."""
    loggers = config.trainer.logger
    loggers = loggers if isinstance(loggers, list) else [loggers]
    return [logger for logger in loggers if getattr(logger, "class_path", None) and "init_args" in logger]


def _log_under_root(logger, root: Path) -> None:
    """A logger's files under the run's root: a ``save_dir`` left empty or at its class's default (``./mlruns``,
    ``.``) becomes ``<root>`` (``<root>/mlruns`` for a default with a folder name of its own)."""
    import importlib
    import inspect

    if "save_dir" not in logger.init_args:
        return
    save_dir = logger.init_args.save_dir
    module, _, name = logger.class_path.rpartition(".")
    try:
        parameter = inspect.signature(getattr(importlib.import_module(module), name)).parameters.get("save_dir")
    except (ImportError, AttributeError, TypeError, ValueError):
        parameter = None
    default = None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
    if not save_dir or (default is not None and save_dir == default):
        logger.init_args.save_dir = str(root / Path(str(default or "")).name)


def _fit_runs_dir(config) -> Path:
    """The folder of the fit runs (``version_N``) for ``config``'s Trainer and logger options."""
    loggers = _logger_configs(config)
    if loggers and loggers[0].init_args.get("name"):
        return Path(loggers[0].init_args.get("save_dir") or _root_dir(config)) / loggers[0].init_args.name
    if not config.trainer.logger:
        return _root_dir(config) / "checkpoints"  # Lightning's checkpoint folder when there is no logger
    return _root_dir(config) / FIT_LOG_NAME


# -- commands outside LightningCLI ---------------------------------------------------------------------------------
def _data_parser(prog: str, description: str) -> LightningArgumentParser:
    parser = ShortErrorParser(prog=prog, description=description)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file of these options "
                        "(--print_config prints one)")
    parser.add_class_arguments(MNISTDataModule, "data")
    return parser


def _datamodule(config) -> MNISTDataModule:
    return MNISTDataModule(**config.data.as_dict())


def given_options(parser: LightningArgumentParser, args):
    """Only the options ``args`` gives (on the command line or in a ``--config`` file), without defaults."""
    if isinstance(args, dict | Namespace):
        return parser.parse_object(args, defaults=False)
    return parser.parse_args(list(args), defaults=False)


def use_checkpoint_data(parser: LightningArgumentParser, config, ckpt_path: str, given, prefix: str | None = None,
                        announce: bool = True):
    """``config`` with the ``--data.*`` options ``given`` leaves out taken from the data settings saved in the
    checkpoint or artifact ``ckpt_path`` (:func:`~litquant.saved_data.saved_data_settings`), checked by
    ``parser``. A saved ``data_dir`` chooses which data to read, never where to write: with it, downloading is
    off. With ``announce``, one line says which data the command uses, and a saved ``data_dir`` that does not
    hold the data is an error naming it."""
    from litquant.data import DATASETS
    from litquant.data.settings import SAVED_DATA_KEYS
    from litquant.data.sources import find_local
    from litquant.saved_data import model_kind, saved_data_settings

    saved = saved_data_settings(ckpt_path)
    kind = model_kind(ckpt_path)
    taken = {key: saved[key] for key in SAVED_DATA_KEYS if key in saved and key not in given}
    if taken.get("data_dir"):
        taken["download"] = False
    if taken:
        config = parser.parse_object({prefix: {"data": taken}} if prefix else {"data": taken}, config)
    if announce:
        data = (config[prefix] if prefix else config).data
        folder = Path(taken["data_dir"]).expanduser() if taken.get("data_dir") else None
        spec = DATASETS.get(data.dataset)
        if folder is not None and spec is not None and (not folder.is_dir() or find_local(spec, folder) is None):
            what = f"does not hold the {spec.name} files" if folder.is_dir() else "is not a folder"
            raise UserError(f"{ckpt_path} was made from {spec.name} in {taken['data_dir']}, which {what} here "
                            f"(a {kind}'s data folder is only read, never downloaded into): pass --data.data_dir "
                            "DIR, the folder that holds them now or one to download them into")
        overridden = [f"--data.{key}" for key in SAVED_DATA_KEYS if key in saved and key in given]
        origin = (f"as saved in the {kind}" + (f", {', '.join(overridden)} from the command line"
                                                if overridden else "")
                  if saved else f"from the --data options (the {kind} saved no data settings)")
        print(f"data: {describe_data(data)}, {origin}", flush=True)
    return config


def describe_data(data) -> str:
    """``mnist from ~/data (train 55000 / val 5000 / test 10000, seed 42)`` for the ``--data.*`` options
    ``data`` (the sizes asked for; the offline fallback says itself when it has fewer)."""
    from litquant.data import DATASETS

    spec = DATASETS[data.dataset]
    train_total = spec.files["train-images-idx3-ubyte"].shape[0]
    test_total = spec.files["t10k-images-idx3-ubyte"].shape[0]
    train = train_total - data.val_size
    train = min(train, data.train_size) if data.train_size else train
    test = min(test_total, data.test_size) if data.test_size else test_total
    where = data.data_dir or "the default data folder ($LITQUANT_DATA or ~/.cache/litquant)"
    return f"{spec.name} from {where} (train {train} / val {data.val_size} / test {test}, seed {data.seed})"


def _parse_data_command(parser: LightningArgumentParser, argv: list[str], ckpt_key: str = "ckpt_path",
                        announce: bool = True):
    """``parser.parse_args(argv)``, the ``--data.*`` options the user left out taken from the checkpoint or
    artifact named by option ``ckpt_key``: see :func:`use_checkpoint_data`. ``--ckpt_path last`` is the newest
    fit run's ``last.ckpt`` (:func:`~litquant.checkpoints.checkpoint_argument`)."""
    from litquant.checkpoints import checkpoint_argument
    from litquant.saved_data import carries_data_settings

    config = parser.parse_args(argv)
    if ckpt_key == "ckpt_path" and config.get(ckpt_key) == "last":
        config[ckpt_key] = checkpoint_argument("last")
    ckpt_path = config.get(ckpt_key)
    if carries_data_settings(ckpt_path):
        given = given_options(parser, argv).get("data") or {}
        config = use_checkpoint_data(parser, config, ckpt_path, given, announce=announce)
    return config


def _load_model(ckpt_path: str | None, artifact: str | None, runner: str = "compile"):
    """A callable model from a Lightning checkpoint or an int8/fp32 artifact (a ``.pt2`` run by ``runner``)."""
    if bool(ckpt_path) == bool(artifact):
        raise UserError("give exactly one of --ckpt_path CKPT (a Lightning checkpoint) or --model ARTIFACT")
    return _load_any(ckpt_path or artifact, runner)


def _load_any(path: str, runner: str = "compile"):
    from litquant.artifacts.loading import load_model

    return load_model(path, runner)


#: ``litquant predict --runner auto`` runs a ``.pt2`` as exported (eager) for fewer images than this, compiled
#: from this many on. On 2 AVX2 cores (``benchmarks/results/predict_startup.avx2.md``) an image cost 1.6 ms eager and
#: 0.55 ms compiled, after 2.6 s of compiling with inductor's cache filled by an earlier run (5.5 s with it empty):
#: compiling pays from about 2,400 images, or 5,300 the very first time.
PREDICT_COMPILE_FROM = 2000


def add_runner_argument(parser: LightningArgumentParser, auto: str | None = None) -> None:
    """``--runner compile|aot|eager`` (and ``auto``, explained by ``auto``, when given): how a ``.pt2`` runs
    (see :data:`litquant.artifacts.loading.Runner`)."""
    from litquant.artifacts.loading import RUNNERS

    choices = ("auto", *RUNNERS) if auto else RUNNERS
    parser.add_argument("--runner", type=Literal[choices], default="auto" if auto else "compile",
                        help=(f".pt2 files: {auto}; " if auto else ".pt2 files: ")
                        + "compile (torch.compile in this process), aot (AOTInductor packages, built once and "
                          "cached under $LITQUANT_CACHE, else ~/.cache/litquant), eager (the exported graph as is)")


def cmd_predict_images(argv: list[str]) -> int:
    parser = _data_parser("litquant predict", "Classify image files (PNG/JPEG..., any size, colour or grey), "
                          "framed as the images of --data.dataset are. Files that cannot be read are reported "
                          "and skipped; the exit code is then 2.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--ckpt_path", help="a Lightning checkpoint (.ckpt)")
    parser.add_argument("--model", help="an exported artifact (.pt2 or .onnx)")
    add_runner_argument(parser, auto=f"auto (default) runs eager below {PREDICT_COMPILE_FROM} images, compiled "
                                     "from there on")
    config = _parse_data_command(parser, argv, announce=False)  # the checkpoint's dataset frames the images
    from litquant.images import classify, format_predictions, read_images

    dm = _datamodule(config)
    paths, images, problems = read_images(config.images, dm.spec.framing)
    if not paths:
        raise problems[0]
    runner = config.runner
    if runner == "auto":
        runner = "compile" if len(images) >= PREDICT_COMPILE_FROM else "eager"
    model = _load_model(config.ckpt_path, config.model, runner)
    predictions = classify(model, images, dm.normalize)
    print(format_predictions(paths, predictions, dm.spec.classes))
    for problem in problems:
        print(f"litquant: skipped {problem}", file=sys.stderr)
    if problems:
        print(f"litquant: error: {len(problems)} of {len(paths) + len(problems)} files could not be read "
              "(listed above); the others were classified", file=sys.stderr)
        return 2
    return 0


def cmd_evaluate(argv: list[str]) -> None:
    parser = _data_parser("litquant evaluate", "Test accuracy of a checkpoint or artifact, with a plain PyTorch loop.")
    parser.add_argument("model", help="a .pt2/.onnx artifact or a .ckpt checkpoint")
    parser.add_argument("--batch_size", type=int, default=256)
    add_runner_argument(parser)
    config = _parse_data_command(parser, argv, ckpt_key="model")
    from litquant.evaluation import evaluate

    model = _load_any(config.model, config.runner)
    accuracy = evaluate(model, _datamodule(config), split="test", batch_size=config.batch_size)
    print(f"test_acc {accuracy:.4f}  ({config.model})")


def method_choices(auto: bool = False) -> type:
    """``Literal[...]`` of the registered quantization methods (and ``auto``, the tuner): the type of
    ``--method``."""
    from litquant.quantization import METHODS

    return Literal[(*METHODS, *(("auto",) if auto else ()))]  # type: ignore[valid-type]


#: The flags ``quantize`` took before ``--quant.*``; still accepted, as the ``--quant.*`` option they now are.
LEGACY_QUANT_FLAGS = ("--calibration_batches", "--qat_epochs", "--qat_max_steps")


def legacy_quant_flags(argv: list[str]) -> list[str]:
    """``argv`` with each of :data:`LEGACY_QUANT_FLAGS` renamed to its ``--quant.*`` option."""
    return [f"--quant.{arg[2:]}" if arg.split("=", 1)[0] in LEGACY_QUANT_FLAGS else arg for arg in argv]


def add_quantize_arguments(parser: LightningArgumentParser) -> None:
    """``--quant.*``: the fields of :class:`~litquant.quantization.QuantizeConfig`, for every command that
    quantizes (``quantize``, ``demo``, the benchmarks)."""
    from litquant.quantization import QuantizeConfig

    parser.add_class_arguments(QuantizeConfig, "quant", instantiate=True)


def quantize_config(config):
    """The :class:`~litquant.quantization.QuantizeConfig` of parsed ``--quant.*`` options."""
    from litquant.quantization import QuantizeConfig

    return QuantizeConfig(**config.quant.as_dict())


def cmd_quantize(argv: list[str]) -> None:
    from litquant.quantization import quantize

    parser = _data_parser("litquant quantize", "Quantize a trained checkpoint to an int8 artifact.")
    parser.add_argument("--ckpt_path", required=True, help="the fp32 Lightning checkpoint to quantize: a .ckpt "
                        "PATH, or `last` (the newest fit run's last.ckpt)")
    parser.add_argument("--method", type=method_choices(auto=True), required=True,
                        help="the quantization method; auto: the fastest candidate within --max_drop points of fp32 "
                             "validation accuracy")
    parser.add_argument("--out", default="quantized", help="output folder")
    parser.add_argument("--max_drop", type=float, default=0.1,
                        help="--method auto: validation accuracy the int8 model may lose, in points")
    add_quantize_arguments(parser)
    config = _parse_data_command(parser, legacy_quant_flags(argv))
    settings = quantize_config(config)
    _require_file(config.ckpt_path, "checkpoint")
    _writable_folder(config.out, "--out")
    if config.method == "auto":
        return _quantize_auto(parser, config, settings)
    # says "<method>: wrote <artifact> (<size>) in <time>" itself
    artifact = quantize(config.method, config.ckpt_path, _datamodule(config), config.out, config=settings)
    from litquant.describe_artifact import quantized_summary

    print(quantized_summary(artifact))
    print(f"configuration: {write_run_config(parser, config, artifact)}")


#: ``<artifact stem>`` + this: the configuration a ``litquant quantize`` run ran with, beside what it wrote.
RUN_CONFIG_SUFFIX = ".quantize_config.yaml"


def run_config_path(artifact: str | os.PathLike) -> Path:
    """``out/ptq.pt2`` → ``out/ptq.quantize_config.yaml`` (``onnxruntime.int8.onnx`` →
    ``onnxruntime.int8.quantize_config.yaml``): one per artifact, as several methods share an output folder."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name.removesuffix(artifact.suffix) + RUN_CONFIG_SUFFIX)


def write_run_config(parser: LightningArgumentParser, config, artifact: Path) -> Path:
    """Write the resolved configuration of the run that wrote ``artifact`` (what ``--print_config`` prints, with
    the ``--data.*`` options taken from the checkpoint) beside it; ``litquant quantize --config FILE`` redoes
    the run.

    Written after the artifact, atomically: a run that fails leaves the previous run's file, which still
    describes the artifact beside it. Its first line names the artifact and its SHA-256, so a file left behind
    by a crash between the two writes (or by an artifact rewritten another way) is seen to be another run's."""
    from litquant.artifacts.files import file_sha256
    from litquant.files import write_text

    header = (f"# litquant quantize: the run that wrote {artifact.name} (sha256 {file_sha256(artifact)}); "
              "`litquant quantize --config THIS_FILE` runs it again\n")
    # as --print_config prints it, unset entries included
    return write_text(run_config_path(artifact), header + parser.dump(config, skip_unset=False))


def _quantize_auto(parser: LightningArgumentParser, config, settings) -> None:
    """``--method auto``: :func:`litquant.apps.tuning.tune`; exit 1 with one line when nothing met
    the budget (the most accurate candidate is written all the same)."""
    import math

    from litquant.apps.tuning import tune
    from litquant.apps.tuning_log import format_table, summary

    if not math.isfinite(config.max_drop):
        raise UserError(f"--max_drop must be a number of points, got {config.max_drop}")
    if settings.fp32_layers:
        raise UserError("--quant.fp32_layers does not apply to --method auto, which chooses the layers left in "
                        "fp32 itself (limit them with --quant.max_fp32_layers)")
    result = tune(config.ckpt_path, _datamodule(config), config.out, settings, max_drop=config.max_drop)
    print(format_table(result.log))
    print(f"auto: {summary(result.log)}")
    print(f"wrote {result.path}, {result.files['markdown']}, {result.files['json']}")
    from litquant.describe_artifact import quantized_summary

    print(quantized_summary(result.path))
    print(f"configuration: {write_run_config(parser, config, result.path)}")  # also when nothing met the budget
    if not result.met:
        print(f"litquant: error: no candidate is within --max_drop {config.max_drop:g} points of fp32 "
              f"(best: {result.chosen.name}, {result.chosen.drop_points:.2f} points); kept it as {result.path}, "
              f"see {result.files['markdown']}", file=sys.stderr)
        raise SystemExit(1)


def cmd_inspect(argv: list[str]) -> None:
    from litquant.apps.inspect import DEFAULT_THRESHOLD_DB, format_table, inspect_artifact, write_inspection

    parser = _data_parser("litquant inspect", "Per-layer numeric report of a PT2E int8 artifact (.pt2) against "
                          "its fp32 checkpoint: output SQNR, activation and weight scales and ranges, saturated "
                          "share; layers below --threshold are flagged with their likely cause. Writes "
                          "inspect.md, inspect.json and layer_sqnr.png into --out.")
    parser.add_argument("artifact", help="the int8 .pt2 artifact (ptq, qat or lightning-qat)")
    parser.add_argument("--ckpt_path", required=True, help="the fp32 Lightning checkpoint it was made from (a .ckpt "
                        "PATH, or `last`: the newest fit run's last.ckpt)")
    parser.add_argument("--out", default="inspect", help="output folder (default: inspect)")
    parser.add_argument("--batches", type=int, default=4, help="validation batches of 256 compared")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_DB,
                        help="flag layers whose output SQNR is below this many dB")
    config = _parse_data_command(parser, argv)
    _require_file(config.artifact, "artifact")
    _require_file(config.ckpt_path, "checkpoint")
    if config.batches < 1:
        raise UserError(f"--batches must be at least 1, got {config.batches}")
    datamodule = _datamodule(config)
    datamodule.setup("fit")
    report = inspect_artifact(config.artifact, config.ckpt_path, datamodule, batches=config.batches,
                              threshold_db=config.threshold)
    paths = write_inspection(report, config.out)
    print(format_table(report))
    print(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}")


def cmd_info(argv: list[str]) -> None:
    parser = ShortErrorParser(prog="litquant info", description="List Lightning's callbacks or loggers.")
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file of these options")
    parser.add_argument("what", type=Literal["callbacks", "loggers"], help="what to list")
    parser.add_argument("--format", type=Literal["text", "markdown", "json"], default="text")
    config = parser.parse_args(argv)
    from litquant.catalog import callback_catalog, format_catalog, logger_catalog

    entries = callback_catalog() if config.what == "callbacks" else logger_catalog()
    print(format_catalog(entries, config.format))


DEMO_HELP = """Run the whole workflow into --out: fit, test the best checkpoint (best val_acc), quantize it with
every method (ptq, qat, lightning-qat, onnxruntime), check every model with plain PyTorch, a Trainer and a fresh
process, and write report.md / report.json, the per-epoch table and the plots.

Every option of `litquant fit` is accepted too (see `litquant fit --help`), e.g.
  litquant demo --out demo --data.data_dir ~/data --trainer.max_epochs 3 --data.train_size 20000
Small defaults: --trainer.max_epochs 2 --data.train_size 10000. --print_config prints the whole configuration
(--config FILE takes it back); a run saves it, --quant.* included, as <out>/mnist/version_N/config.yaml."""


class DemoCLI(LitquantCLI):
    """``litquant demo``: :class:`LitquantCLI`'s options plus ``--out``, ``--methods`` and ``--quant.*``."""

    def __init__(self, args: Sequence[str]) -> None:
        super().__init__(args=args, run=False, prog="litquant demo", description=DEMO_HELP)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from litquant.quantization import METHODS

        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", default="demo", help="output folder (also the default --trainer.default_root_dir)")
        parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated quantization methods")
        add_quantize_arguments(parser)
        parser.set_defaults({"data.train_size": 10000})  # and litquant fit's default length

    def before_instantiate_classes(self) -> None:
        from litquant.quantization import METHODS

        config = self.config
        methods = [m for m in config.methods.split(",") if m]
        if unknown := [m for m in methods if m not in METHODS]:
            raise UserError(f"unknown method {', '.join(unknown)}: choose from {', '.join(METHODS)}")
        _writable_folder(config.out, "--out")
        if config.trainer.default_root_dir == DEFAULT_ROOT_DIR:
            config.trainer.default_root_dir = config.out
        super().before_instantiate_classes()


def cmd_demo(argv: list[str]) -> None:
    from litquant.apps.workflow import run_demo

    cli = DemoCLI(legacy_quant_flags(argv))
    config = cli.config
    run_demo(cli.trainer, cli.model, cli.datamodule, Path(config.out), [m for m in config.methods.split(",") if m],
             quantize_config(config))


def _require_file(path: str, what: str) -> None:
    if not Path(path).is_file():
        raise UserError(f"{what} not found: {path}")


def _writable_folder(path: str, option: str) -> Path:
    """``path`` as an output folder, created if needed; checked before any work is done."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {path} is a file, not a folder; pass a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{option} {path}: cannot create the folder ({err.strerror or err}); "
                        "pass a folder you can write to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: the folder is not writable; pass a folder you can write to")
    return folder


def cmd_bench(argv: list[str]) -> None:
    from litquant.apps.bench import main as bench

    bench(argv)


def cmd_describe(argv: list[str]) -> None:
    from litquant.describe_artifact import main as describe

    describe(argv)


def cmd_serve(argv: list[str]) -> None:
    from litquant.serve.cli import main as serve

    serve(argv)


COMMANDS = {"demo": cmd_demo, "quantize": cmd_quantize, "evaluate": cmd_evaluate, "describe": cmd_describe,
            "inspect": cmd_inspect, "bench": cmd_bench, "serve": cmd_serve, "info": cmd_info}

USAGE = """usage: litquant {fit,validate,test,predict,demo,quantize,evaluate,describe,inspect,bench,serve,info} ...

Lightning on MNIST end to end, and fast int8 models from it.

  fit        train (every option: litquant fit --help)       e.g. litquant fit --trainer.max_epochs 3
  validate   validate a checkpoint                             litquant validate --ckpt_path CKPT
  test       test a checkpoint (the tutorial's --load_model)   litquant test --ckpt_path CKPT
  predict    classify image files, or the test set             litquant predict --ckpt_path CKPT digit.png
  demo       fit, test, quantize four ways, report             litquant demo --out demo
  quantize   int8 artifact from a checkpoint                   litquant quantize --ckpt_path CKPT --method ptq
             (--method auto --max_drop 0.1: the fastest within 0.1 points of fp32 validation accuracy)
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


def _check_config_files(argv: list[str]) -> None:
    """Each ``--config FILE`` is readable YAML; else one line naming the file and the place of the problem."""
    import yaml

    given = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("-c", "--config")]
    given += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    for name in given:
        path = Path(name)
        if not path.is_file():
            continue  # a YAML string given inline, or a missing file: the parser names it
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or _one_line(err)
            raise UserError(f"--config {name}: not valid YAML ({problem}{where}); fix the file") from None


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LITQUANT_DEBUG") == "1"
    if not debug:
        _quiet_libraries()
    register_safe_globals()
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
            return cmd_predict_images(rest)
        elif command in COMMANDS:
            COMMANDS[command](rest)
        elif command in LIGHTNING_COMMANDS:
            _check_config_files(rest)
            LitquantCLI(args=[command, *rest])
        else:
            raise UserError(f"unknown command {command!r}: run `litquant --help` for the list")
    except FitComplete as complete:
        print(f"litquant: {complete}")
    except KeyboardInterrupt:
        print(f"litquant: interrupted{resume_hint}", file=sys.stderr)
        return 128 + signal.SIGINT
    except SIGTERMException:
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
        return 2 if isinstance(error, USER_ERRORS) else 1
    finally:
        if catch_sigint:  # also after Lightning set it to "ignore" while shutting down
            signal.signal(signal.SIGINT, previous_handler)
    return 0


if __name__ == "__main__":
    # ``python -m litquant.cli``: run the package's module, not this ``__main__`` copy of it, so that the UserError
    # other modules import from ``litquant.cli`` is the class ``main`` catches as a user error (exit 2)
    from litquant.cli import main as package_main

    sys.exit(package_main())
