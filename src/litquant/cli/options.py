"""What every ``litquant`` command's parser shares: short errors, the help format, ``--config``, ``--runner``,
``--debug``, and the checks of files and folders given as options.

jsonargparse only: importing this module imports no torch and no Lightning (``--help`` of a command stays fast).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Literal, NoReturn

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, Namespace

from litquant.errors import UserError

#: ``--runner``'s help: how a ``.pt2`` runs (:data:`litquant.artifacts.loading.Runner`)
RUNNER_HELP = ("compile (torch.compile where the model runs), aot (AOTInductor packages, built once and cached "
               "under $LITQUANT_CACHE, else ~/.cache/litquant: later starts are fast), eager (the exported graph "
               "as is)")


def _choice_error(message: str) -> str | None:
    """jsonargparse's several lines on a value outside a ``Literal[...]`` (or ``Literal[...] | bool``) as one:
    ``unknown --key 'value': choose one of a, b, c`` (``..., true, false``); ``None`` for other errors."""
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


def missing_logger_error(message: str) -> str | None:
    """jsonargparse's ``Does not validate against any of the Union subtypes`` for a logger whose package is
    not installed, as one line: ``--trainer.logger TensorBoardLogger: tensorboard ... is not installed: pip
    install 'litquant[tensorboard]'``; ``None`` for other errors."""
    from litquant.catalog import missing_logger_backend

    for class_path in re.findall(r"Problem with given class_path '([\w.]+Logger)'", message):
        if missing := missing_logger_backend(class_path):
            return f"--trainer.logger {class_path.rsplit('.', 1)[-1]}: {missing}"
    return None


def _did_you_mean(parser, message: str) -> str | None:
    """``unrecognized arguments: --quant.observr minmax`` as ``unknown option --quant.observr: did you mean
    --quant.observer?`` when an option of ``parser`` is close to it; ``None`` otherwise."""
    found = re.search(r"nrecognized arguments: (--[\w.-]+)", message)
    if not found:
        return None
    given = found.group(1).split("=", 1)[0]
    options = [option for option in parser._option_string_actions if option.startswith("--")]
    close = difflib.get_close_matches(given, options, n=1, cutoff=0.75)
    return f"unknown option {given}: did you mean {close[0]}?" if close else None


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


class ShortErrors:
    """Parser errors as a few lines (what is wrong, where to read the options), not the whole usage; the help in
    :class:`HelpFormatter`. Mixed into jsonargparse's parser (:class:`ShortErrorParser`) and Lightning's
    (:class:`litquant.cli.lightning.LightningShortErrorParser`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        if "class_path" in str(message) and (missing := missing_logger_error(str(message))):
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


class ShortErrorParser(ShortErrors, ArgumentParser):
    """The parser of every command outside LightningCLI: jsonargparse's, with :class:`ShortErrors`."""


def command_parser(prog: str, description: str) -> ShortErrorParser:
    """A command's parser with ``--config FILE`` (and so ``--print_config``, which prints one). (``--debug``, which
    every command takes, is read and removed by :func:`litquant.cli.main` before the command parses.)"""
    parser = ShortErrorParser(prog=prog, description=description)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file of these options "
                        "(--print_config prints one)")
    return parser


def add_runner_argument(parser: ArgumentParser, where: str = "in this process", auto: str | None = None) -> None:
    """``--runner compile|aot|eager`` (and ``auto``, explained by ``auto``, when given): how a ``.pt2`` runs;
    ``where`` says where torch.compile compiles."""
    from litquant.artifacts.loading import RUNNERS

    choices = ("auto", *RUNNERS) if auto else RUNNERS
    parser.add_argument("--runner", type=Literal[choices], default="auto" if auto else "compile",
                        help=(f".pt2 files: {auto}; " if auto else ".pt2 files: ")
                        + RUNNER_HELP.replace("where the model runs", where))


def require_file(path: str, what: str) -> None:
    """Raises:
        UserError: ``path`` is not a file."""
    if not Path(path).is_file():
        raise UserError(f"{what} not found: {path}")


def writable_folder(path: str, option: str) -> Path:
    """``path`` as an output folder, created if needed; checked before any work is done.

    Raises:
        UserError: it is a file, cannot be created or is not writable."""
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


def check_config_files(argv: list[str]) -> None:
    """Each ``--config FILE`` is readable YAML.

    Raises:
        UserError: one is not, naming the file and the place of the problem."""
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
            problem = getattr(err, "problem", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"--config {name}: not valid YAML ({problem}{where}); fix the file") from None


def given_options(parser: ArgumentParser, args):
    """Only the options ``args`` gives (on the command line or in a ``--config`` file), without defaults."""
    if isinstance(args, dict | Namespace):
        return parser.parse_object(args, defaults=False)
    return parser.parse_args(list(args), defaults=False)


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


def add_quantize_arguments(parser: ArgumentParser) -> None:
    """``--quant.*``: the fields of :class:`~litquant.quantization.QuantizeConfig`, for every command that
    quantizes (``quantize``, ``demo``, the benchmarks)."""
    from litquant.quantization import QuantizeConfig

    parser.add_class_arguments(QuantizeConfig, "quant", instantiate=True)


def quantize_config(config):
    """The :class:`~litquant.quantization.QuantizeConfig` of parsed ``--quant.*`` options."""
    from litquant.quantization import QuantizeConfig

    return QuantizeConfig(**config.quant.as_dict())
