"""``litquant quantize``: an int8 artifact from a checkpoint, by one method or (``--method auto``) the fastest
within an accuracy budget, and the configuration it ran with written beside it.

The checkpoint is MNIST's classifier unless ``--model CLASS_PATH`` names the user's LightningModule, and the data
MNIST's (``--data.*``) unless ``--data CLASS_PATH`` names the user's LightningDataModule, both as LightningCLI
takes them (a class path, or ``class_path`` and ``init_args``). The class is always the one named on the command
line, never one the checkpoint names.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace

from litquant.cli.data_options import data_command_parser, make_datamodule, parse_data_command
from litquant.cli.options import (
    add_quantize_arguments,
    legacy_quant_flags,
    method_choices,
    quantize_config,
    require_file,
    writable_folder,
)
from litquant.errors import UserError

_DESCRIPTION = ("Quantize a trained checkpoint to an int8 artifact. Your own model: --model CLASS_PATH (a "
                "LightningModule with example_input_array; the checkpoint is loaded into it) and --data CLASS_PATH "
                "(a LightningDataModule whose batches are (inputs, target); its arguments as --data.init_args.NAME). "
                "Without them: MNIST's classifier and data (--data.*).")


def cmd_quantize(argv: list[str]) -> None:
    from litquant.quantization import quantize

    argv = legacy_quant_flags(argv)
    own_data = names_own_data(argv)
    parser = own_data_parser() if own_data else data_command_parser("litquant quantize", _DESCRIPTION)
    parser.add_argument("--ckpt_path", required=True, help="the fp32 Lightning checkpoint to quantize: a .ckpt "
                        "PATH, or `last` (the newest fit run's last.ckpt)")
    parser.add_argument("--method", type=method_choices(auto=True), required=True,
                        help="the quantization method; auto: the fastest candidate within --max_drop points of fp32 "
                             "validation accuracy")
    parser.add_argument("--out", default="quantized", help="output folder")
    parser.add_argument("--max_drop", type=float, default=0.1,
                        help="--method auto: validation accuracy the int8 model may lose, in points")
    add_model_arguments(parser)
    add_quantize_arguments(parser)
    config = parse_own_data(parser, argv) if own_data else parse_data_command(parser, argv)
    settings = quantize_config(config)
    require_file(config.ckpt_path, "checkpoint")
    writable_folder(config.out, "--out")
    model = model_spec(config.model, config.logits_output)
    datamodule = parser.instantiate_classes(config).data if own_data else make_datamodule(config)
    if config.method == "auto":
        return _quantize_auto(parser, config, settings, datamodule, model)
    # says "<method>: wrote <artifact> (<size>) in <time>" itself
    artifact = quantize(config.method, config.ckpt_path, datamodule, config.out, config=settings, model=model)
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


def write_run_config(parser: ArgumentParser, config, artifact: Path) -> Path:
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


def _quantize_auto(parser: ArgumentParser, config, settings, datamodule, model) -> None:
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
    result = tune(config.ckpt_path, datamodule, config.out, settings, max_drop=config.max_drop, model=model)
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


# -- your own model and data ------------------------------------------------------------------------------
def add_model_arguments(parser: ArgumentParser) -> None:
    """``--model CLASS_PATH`` (a LightningModule; default MNIST's classifier), or ``{class_path, init_args}`` as
    LightningCLI writes it, and ``--logits_output`` (which of its outputs is the class logits). The class is not
    checked against its ``__init__`` here: the arguments it needs come from the checkpoint."""
    parser.add_argument("--model", type=str | dict | None, default=None,
                        help="your LightningModule class (default: MNIST's classifier), or {class_path: ..., "
                             "init_args: {...}}: the checkpoint's weights and hyper-parameters are loaded into it; "
                             "init_args replace hyper-parameters of the same name")
    parser.add_argument("--logits_output", type=int | str | None, default=None,
                        help="a model with several outputs: the position (tuple) or key (dict) of the class logits")


def names_own_data(argv: list[str]) -> bool:
    """Whether ``argv`` (or a ``--config`` file in it) names a data module class: ``--data CLASS_PATH`` (``--data
    FILE``, a file of ``--data.*`` options, stays MNIST's), ``--data.class_path``, or a config file whose ``data``
    is a class path or has ``class_path``."""
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        value = value if equals else (argv[index + 1] if index + 1 < len(argv) else "")
        if name == "--data.class_path" or (name == "--data" and not Path(value).is_file()):
            return True
        if name in ("-c", "--config") and _config_names_data_class(value):
            return True
    return False


def _config_names_data_class(path: str) -> bool:
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            content = yaml.safe_load(file)
    except (OSError, yaml.YAMLError):
        return False  # the parser says what is wrong with it
    data = content.get("data") if isinstance(content, dict) else None
    return isinstance(data, str) or (isinstance(data, dict) and "class_path" in data)


def own_data_parser() -> ArgumentParser:
    """The parser of ``litquant quantize --data CLASS_PATH``: the data module class and its ``init_args``."""
    import lightning.pytorch as L

    from litquant.cli.options import command_parser

    parser = command_parser("litquant quantize", _DESCRIPTION)
    parser.add_subclass_arguments(L.LightningDataModule, "data", required=True, instantiate=True,
                                  help="your LightningDataModule class: batches of (inputs, target), the inputs as "
                                       "the model's example_input_array, the target the class indices")
    return parser


def parse_own_data(parser: ArgumentParser, argv: list[str]) -> Namespace:
    """``parser.parse_args(argv)`` with ``--ckpt_path last`` resolved; the checkpoint's MNIST data settings are
    not used (the data is the class named)."""
    config = parser.parse_args(argv)
    if config.ckpt_path == "last":
        from litquant.checkpoints import checkpoint_argument

        config.ckpt_path = checkpoint_argument("last")
    return config


def model_spec(model: str | dict | None, logits_output: int | str | None):
    """The :class:`~litquant.quantization.model_io.ModelSpec` of ``--model`` and ``--logits_output``: the class
    named (imported because the user named it, never because a checkpoint does) and its ``init_args``.

    Raises:
        UserError: the class path does not name an importable LightningModule, or the mapping is not
            ``{class_path, init_args}``."""
    from importlib import import_module

    import lightning.pytorch as L

    from litquant.quantization.model_io import ModelSpec

    if model is None:
        return ModelSpec(logits_output=logits_output)
    init_args = {}
    if isinstance(model, dict):
        unknown = sorted(set(model) - {"class_path", "init_args"})
        if unknown or not isinstance(model.get("class_path"), str) or not isinstance(model.get("init_args", {}), dict):
            raise UserError(f"--model {model}: give a class path, or {{class_path: CLASS_PATH, init_args: {{...}}}}")
        model, init_args = model["class_path"], model.get("init_args", {})
    module_name, _, class_name = model.rpartition(".")
    try:
        module_class = getattr(import_module(module_name), class_name) if module_name else None
    except ImportError as err:
        raise UserError(f"--model {model}: cannot import {module_name} ({err}); is its folder on PYTHONPATH?") from None
    except AttributeError:
        module_class = None
    if not (isinstance(module_class, type) and issubclass(module_class, L.LightningModule)):
        what = "not found" if module_class is None else "not a LightningModule class"
        raise UserError(f"--model {model}: {what}; give the class path of your LightningModule, "
                        "e.g. my_package.models.MyModel")
    return ModelSpec(module_class, logits_output, init_args)
