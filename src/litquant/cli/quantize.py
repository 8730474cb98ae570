"""``litquant quantize``: an int8 artifact from a checkpoint, by one method or (``--method auto``) the fastest
within an accuracy budget, and the configuration it ran with written beside it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

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


def cmd_quantize(argv: list[str]) -> None:
    from litquant.quantization import quantize

    parser = data_command_parser("litquant quantize", "Quantize a trained checkpoint to an int8 artifact.")
    parser.add_argument("--ckpt_path", required=True, help="the fp32 Lightning checkpoint to quantize: a .ckpt "
                        "PATH, or `last` (the newest fit run's last.ckpt)")
    parser.add_argument("--method", type=method_choices(auto=True), required=True,
                        help="the quantization method; auto: the fastest candidate within --max_drop points of fp32 "
                             "validation accuracy")
    parser.add_argument("--out", default="quantized", help="output folder")
    parser.add_argument("--max_drop", type=float, default=0.1,
                        help="--method auto: validation accuracy the int8 model may lose, in points")
    add_quantize_arguments(parser)
    config = parse_data_command(parser, legacy_quant_flags(argv))
    settings = quantize_config(config)
    require_file(config.ckpt_path, "checkpoint")
    writable_folder(config.out, "--out")
    if config.method == "auto":
        return _quantize_auto(parser, config, settings)
    # says "<method>: wrote <artifact> (<size>) in <time>" itself
    artifact = quantize(config.method, config.ckpt_path, make_datamodule(config), config.out, config=settings)
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


def _quantize_auto(parser: ArgumentParser, config, settings) -> None:
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
    result = tune(config.ckpt_path, make_datamodule(config), config.out, settings, max_drop=config.max_drop)
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
