"""``litquant fit | validate | test | predict`` (and ``demo``'s training): :class:`LitquantCLI`, Lightning's
:class:`~lightning.pytorch.cli.LightningCLI` with litquant's defaults. Every Trainer, model and data option is a
flag (``--trainer.max_epochs 3``, ``--model.lr 1e-3``, ``--data.data_dir DIR``) or a YAML entry
(``--config run.yaml``). ``litquant test --ckpt_path BEST`` is the original tutorial's ``--load_model``.
"""

from __future__ import annotations

import csv
import os
import pickle
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from litquant.callbacks import ConfusionMatrix, InterruptedCheckpoint, MetricsReport
from litquant.checkpoints import (
    FIT_RUNS_DIR,
    no_last_checkpoint,
    register_safe_globals,
    resume_checkpoint,
    unsafe_checkpoint_error,
)
from litquant.cli.data_options import use_checkpoint_data
from litquant.cli.options import ShortErrors, check_config_files, given_options, missing_logger_error
from litquant.data import MNISTDataModule
from litquant.errors import FitComplete, UserError
from litquant.model import MNISTClassifier

DEFAULT_ROOT_DIR = str(FIT_RUNS_DIR.parent)
#: The first line of ``litquant fit|validate|test|predict --help``.
DESCRIPTION = "The ``litquant`` command line, in Lightning's conventions."

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


def _default_length(trainer) -> None:
    """A fit given no length (``--trainer.max_epochs``, ``--trainer.max_steps`` or ``--trainer.max_time``) trains
    :data:`DEFAULT_MAX_EPOCHS`; one given any of them is left to them, as in Lightning. Resolved here, not as a
    parser default, so that ``--print_config`` writes ``max_epochs: null`` and its file behaves as the command."""
    if trainer.max_epochs is None and trainer.max_steps in (None, -1) and trainer.max_time is None:
        trainer.max_epochs = DEFAULT_MAX_EPOCHS



class LightningShortErrorParser(ShortErrors, LightningArgumentParser):
    """LightningCLI's parser with :class:`~litquant.cli.options.ShortErrors`."""


class LitquantCLI(LightningCLI):
    """LightningCLI with litquant's defaults: CSV logs, two top-3 checkpoints plus ``last.ckpt``, tables, plots,
    and a test's confusion matrix.

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
            parser_class=LightningShortErrorParser,
            trainer_defaults={
                "default_root_dir": DEFAULT_ROOT_DIR,
                "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                           "init_args": {"save_dir": "", "name": FIT_LOG_NAME}},
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": prog, "description": description or DESCRIPTION},
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
        parser.add_lightning_class_args(ConfusionMatrix, "confusion_matrix")

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
                raise UserError(no_last_checkpoint(runs_dir))
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
        if self.subcommand in ("fit", None):
            _note_replaced_optimizer(config)
        if self.subcommand in ("fit", None) and config.trainer.precision is None:
            self._choose_precision(config)
        elif self.subcommand in ("fit", None) and "bf16" in str(config.trainer.precision):
            self._note_emulated_bf16(config)

    def instantiate_classes(self) -> None:
        """A logger whose package is missing: one line with the install command, exit 2."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            if missing := missing_logger_error(str(error)):
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
        if trainer.fast_dev_run:  # checks the code and writes nothing; ModelCheckpoint.on_train_end (Lightning 2.6)
            # would still save last.ckpt
            trainer.callbacks = [cb for cb in trainer.callbacks if not isinstance(cb, ModelCheckpoint)]
        elif self.subcommand in (None, "fit"):
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


def _class_name(option) -> str | None:
    """The class an ``--optimizer``/``--lr_scheduler`` option names (``SGD``), ``None`` when not given."""
    class_path = getattr(option, "class_path", None) or (option if isinstance(option, str) else None)
    return class_path.rpartition(".")[2] if class_path else None


def _note_replaced_optimizer(config) -> None:
    """Lightning's ``--optimizer`` (and ``--lr_scheduler``) replace the model's ``configure_optimizers``: its
    ``--model.optimizer`` and its schedule. One line says so, and how to keep the schedule."""
    optimizer = _class_name(config.get("optimizer"))
    if optimizer is None or "model" not in config:
        return
    model = config.model
    line = (f"--optimizer {optimizer} replaces the model's {model.optimizer} (--model.optimizer, --model.lr, "
            "--model.weight_decay)")
    if scheduler := _class_name(config.get("lr_scheduler")):
        line += f" and --lr_scheduler {scheduler} its {model.scheduler} schedule"
    elif model.scheduler != "none":
        line += f" and trains without its {model.scheduler} schedule (--lr_scheduler gives one)"
    own = typing.get_args(typing.get_type_hints(MNISTClassifier.__init__)["optimizer"])
    if optimizer.lower() in own and model.scheduler != "none":
        line += f"; --model.optimizer {optimizer.lower()} keeps the schedule"
    print(line, flush=True)


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




def run_lightning_command(command: str, argv: list[str]) -> None:
    """``litquant fit|validate|test|predict ARGV``: each ``--config`` file checked first, checkpoints loaded
    through litquant's allowlist."""
    check_config_files(argv)
    register_safe_globals()
    LitquantCLI(args=[command, *argv])
