"""The commands that read an artifact or checkpoint: ``predict`` of image files, ``evaluate``, ``describe`` and
``inspect``. Each imports what its model needs when it runs: ``predict`` and ``evaluate`` of an ``.onnx`` neither
PyTorch nor Lightning (numpy images and data, ONNX Runtime), of a ``.pt2`` PyTorch but not Lightning;
``describe`` reads only the embedded description."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import numpy as np

from litquant.cli.data_options import (
    data_command_parser,
    data_settings_from_options,
    make_datamodule,
    parse_data_command,
)
from litquant.cli.options import add_runner_argument, command_parser, require_file
from litquant.errors import UserError


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


def cmd_predict_images(argv: list[str]) -> int:
    parser = data_command_parser("litquant predict", "Classify image files (PNG/JPEG..., any size, colour or grey), "
                               "framed as the images of --data.dataset are. Files that cannot be read are reported "
                               "and skipped; the exit code is then 2.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--ckpt_path", help="a Lightning checkpoint (.ckpt)")
    parser.add_argument("--model", help="an exported artifact (.pt2 or .onnx)")
    add_runner_argument(parser, auto=f"auto (default) runs eager below {PREDICT_COMPILE_FROM} images, compiled "
                                     "from there on")
    config = parse_data_command(parser, argv, announce=False)  # the checkpoint's dataset frames the images
    from litquant.images import classify, format_predictions, read_images

    spec = data_settings_from_options(config).spec
    paths, images, problems = read_images(config.images, spec.framing)
    if not paths:
        raise problems[0]
    runner = config.runner
    if runner == "auto":
        runner = "compile" if len(images) >= PREDICT_COMPILE_FROM else "eager"
    model = _load_model(config.ckpt_path, config.model, runner)
    predictions = classify(_on_numpy(model), images, spec.normalize)
    print(format_predictions(paths, predictions, spec.classes))
    for problem in problems:
        print(f"litquant: skipped {problem}", file=sys.stderr)
    if problems:
        print(f"litquant: error: {len(problems)} of {len(paths) + len(problems)} files could not be read "
              "(listed above); the others were classified", file=sys.stderr)
        return 2
    return 0


def cmd_evaluate(argv: list[str]) -> None:
    parser = data_command_parser("litquant evaluate", "Test accuracy of a checkpoint or artifact, with a plain "
                                 "loop, no Trainer (an .onnx runs without PyTorch).")
    parser.add_argument("model", help="a .pt2/.onnx artifact or a .ckpt checkpoint")
    parser.add_argument("--batch_size", type=int, default=256)
    add_runner_argument(parser)
    config = parse_data_command(parser, argv, ckpt_key="model")
    model = _load_any(config.model, config.runner)
    if _runs_on_numpy(model):
        accuracy = _numpy_accuracy(model, data_settings_from_options(config), config.batch_size)
    else:
        from litquant.evaluation import evaluate

        accuracy = evaluate(model, make_datamodule(config), split="test", batch_size=config.batch_size)
    print(f"test_acc {accuracy:.4f}  ({config.model})")


def _runs_on_numpy(model) -> bool:
    """Whether ``model`` is an ``.onnx`` artifact: it runs on numpy arrays, without PyTorch."""
    from litquant.artifacts.loading import LoadedModel

    return isinstance(model, LoadedModel) and model.kind == "onnx"


def _on_numpy(model):
    """``model`` as :func:`litquant.images.classify` calls it: an ``.onnx`` as loaded, a PyTorch one wrapped."""
    from litquant.images import on_numpy

    return model if _runs_on_numpy(model) else on_numpy(model)


def _numpy_accuracy(model, settings, batch_size: int) -> float:
    """Test accuracy of an ``.onnx`` ``model`` on the test split of ``settings``, the batches as
    :func:`litquant.evaluation.evaluate` makes them, without PyTorch or Lightning."""
    from litquant.images import classify

    arrays, _ = settings.load_arrays()
    images, labels = settings.test_split(arrays)
    if not len(labels):
        raise ValueError("the 'test' split is empty: nothing to evaluate")
    predicted = np.array([label for label, _ in classify(model, images[:, None], settings.spec.normalize,
                                                         batch_size)])
    return int((predicted == labels).sum()) / len(labels)


def cmd_inspect(argv: list[str]) -> None:
    from litquant.apps.inspect import DEFAULT_THRESHOLD_DB, format_table, inspect_artifact, write_inspection
    from litquant.checkpoints import register_safe_globals

    parser = data_command_parser("litquant inspect", "Per-layer numeric report of a PT2E int8 artifact (.pt2) against "
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
    config = parse_data_command(parser, argv)
    register_safe_globals()
    require_file(config.artifact, "artifact")
    require_file(config.ckpt_path, "checkpoint")
    if config.batches < 1:
        raise UserError(f"--batches must be at least 1, got {config.batches}")
    datamodule = make_datamodule(config)
    datamodule.setup("fit")
    report = inspect_artifact(config.artifact, config.ckpt_path, datamodule, batches=config.batches,
                              threshold_db=config.threshold)
    paths = write_inspection(report, config.out)
    print(format_table(report))
    print(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}")



def cmd_describe(argv: list[str]) -> None:
    from litquant.describe_artifact import format_description, read_description

    parser = command_parser("litquant describe", "Print the description an artifact (.pt2 or .onnx) carries inside: "
                            "method, checkpoint, input, accuracy, data, versions and what its method recorded.")
    parser.add_argument("artifacts", nargs="+", help="artifact files (.pt2 or .onnx)")
    parser.add_argument("--format", type=Literal["text", "json"], default="text",
                        help="text (for reading) or json (the embedded description as it is stored)")
    config = parser.parse_args(list(argv))
    for path in config.artifacts:
        if not Path(path).is_file():
            raise UserError(f"artifact not found: {path}")
    described = [(path, read_description(path)) for path in config.artifacts]
    if config.format == "json":
        documents = [description.to_dict() for _, description in described]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    else:
        print("\n\n".join(format_description(path, description) for path, description in described))
