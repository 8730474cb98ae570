"""The description an artifact carries inside it: :class:`ArtifactDescription` (method, precision, input and output
spec, library versions, the checkpoint and the SHA-256 of its bytes, accuracy, method-specific details), how one is
made for a model (:func:`describe`), and the checks of a model against it (inputs and outputs, int8 operators).

The description travels **inside** the file: the ``.pt2`` extra file ``extra/litquant.json``, the ONNX
``metadata_props`` entry ``litquant.description``. The JSON beside the file (``model.pt2`` → ``model.json``) is a
readable copy written after the artifact; nothing reads it back.

Example::

    from litquant.artifacts.description import describe

    description = describe("ptq", "int8", checkpoint="runs/last.ckpt", accuracy={"test_acc": 0.98})
    description.input.normalization        # {'formula': '(pixel / 255 - mean) / std', 'mean': ..., 'std': ...}
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.files import file_sha256
from litquant.artifacts.signature import Signature, SignatureError, check_signature

__all__ = ["ARTIFACT_FORMAT", "ONNX_DESCRIPTION", "PT2_DESCRIPTION", "ArtifactDescription", "InputSpec",
           "OutputSpec", "check_io", "check_precision", "describe", "description_mismatch",
           "invalid_description", "saturation_warning", "versions"]

#: Version tag of the description's layout.
ARTIFACT_FORMAT = "litquant-artifact/2"
#: Name of the description inside a ``.pt2`` (``extra/<name>``) and key in an ONNX model's ``metadata_props``.
PT2_DESCRIPTION = "litquant.json"
ONNX_DESCRIPTION = "litquant.description"


def versions() -> dict[str, str]:
    """Versions of the libraries that make and run the artifacts, and of Python."""
    found = {"python": platform.python_version()}
    for package in ("litquant", "torch", "torchao", "lightning", "onnx", "onnxruntime", "onnxscript"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def invalid_description(what: str) -> ArtifactError:
    """The error for a description litquant does not write (``what``: which part)."""
    return ArtifactError(f"invalid artifact description: {what}; make the artifact again with litquant")


def _shape(value: Any, what: str) -> tuple[str | int, ...]:
    if (not isinstance(value, (list, tuple)) or not value or value[0] != "batch"
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value[1:])):
        raise invalid_description(f"{what} shape {value!r} is not ['batch', positive sizes...]")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the model takes: input names, shape (``"batch"`` first), dtype, and how images are normalised."""

    names: tuple[str, ...] = ("x",)
    shape: tuple[str | int, ...] = ("batch", 1, 28, 28)
    dtype: str = "float32"
    normalization: dict[str, Any] | None = None
    dataset: str | None = None
    classes: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "shape": list(self.shape), "dtype": self.dtype,
                "normalization": self.normalization, "dataset": self.dataset,
                "classes": None if self.classes is None else list(self.classes)}

    @classmethod
    def from_dict(cls, data: Any) -> InputSpec:
        if not isinstance(data, Mapping):
            raise invalid_description("'input' is not an object")
        names = data.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise invalid_description(f"input names {names!r} are not a list of names")
        if data.get("dtype") != "float32":
            raise invalid_description(f"input dtype {data.get('dtype')!r} is not 'float32'")
        norm = data.get("normalization")
        if norm is not None:
            values = [norm.get(k) if isinstance(norm, Mapping) else None for k in ("mean", "std")]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or values[1] <= 0:
                raise invalid_description(f"input normalization {norm!r} needs a finite mean and a positive std")
        classes = data.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
            raise invalid_description(f"input classes {classes!r} are not a list of names")
        dataset = data.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise invalid_description(f"input dataset {dataset!r} is not a name")
        return cls(tuple(names), _shape(data.get("shape"), "input"), "float32", norm, dataset,
                   None if classes is None else tuple(classes))


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What the model returns: logits ``[batch, classes]``."""

    name: str = "logits"
    shape: tuple[str | int, ...] = ("batch", 10)
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Any) -> OutputSpec:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise invalid_description("'output' is not an object with a name")
        if data.get("dtype") != "float32":
            raise invalid_description(f"output dtype {data.get('dtype')!r} is not 'float32'")
        return cls(data["name"], _shape(data.get("shape"), "output"), "float32")


@dataclasses.dataclass(frozen=True)
class ArtifactDescription:
    """Everything an artifact says about itself; embedded in the file, copied to the JSON beside it.

    ``extra`` holds what a method adds (calibration, fine-tuning, the ONNX Runtime weight-format check...); in the
    dict form its keys sit at the top level, beside the fixed ones. ``data``: the data settings of the model's
    data module (:mod:`litquant.data.settings`), used by the commands that load the artifact as a checkpoint's.
    ``signature`` lists every input and output of a model with several (see :mod:`litquant.artifacts.signature`);
    ``input`` is then its first input and ``output`` its class logits. Without one, the model takes ``input`` and
    returns ``output``.
    """

    method: str
    precision: str
    input: InputSpec = dataclasses.field(default_factory=InputSpec)
    output: OutputSpec = dataclasses.field(default_factory=OutputSpec)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    accuracy: dict[str, Any] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=versions)
    created: str = dataclasses.field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                                     .isoformat(timespec="seconds"))
    format: str = ARTIFACT_FORMAT
    data: dict[str, Any] | None = None
    signature: Signature | None = None

    _FIXED = ("format", "method", "precision", "created", "checkpoint", "checkpoint_sha256", "versions", "input",
              "output", "accuracy", "data", "signature")

    def __post_init__(self) -> None:
        classes = self.input.classes
        if classes is not None and self.output.shape[1:] != (len(classes),):
            raise invalid_description(f"output shape {list(self.output.shape)} does not match {len(classes)} classes")

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "method": self.method, "precision": self.precision, "created": self.created,
                "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
                "versions": dict(self.versions), "input": self.input.to_dict(), "output": self.output.to_dict(),
                "accuracy": self.accuracy, **({"data": dict(self.data)} if self.data is not None else {}),
                **({} if self.signature is None else {"signature": self.signature.to_dict()}), **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def replace(self, **changes: Any) -> ArtifactDescription:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any) -> ArtifactDescription:
        if not isinstance(data, Mapping):
            raise invalid_description("not a JSON object")
        if data.get("format") != ARTIFACT_FORMAT:
            raise invalid_description(f"format {data.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
        for key in ("method", "precision", "created"):
            if not isinstance(data.get(key), str):
                raise invalid_description(f"{key!r} is missing")
        sha = data.get("checkpoint_sha256")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise invalid_description(f"checkpoint_sha256 {sha!r} is not a SHA-256 hex digest")
        found = data.get("versions")
        if not isinstance(found, Mapping) or not all(isinstance(v, str) for v in found.values()):
            raise invalid_description("'versions' is not an object of strings")
        accuracy = data.get("accuracy")
        if accuracy is not None and not isinstance(accuracy, Mapping):
            raise invalid_description("'accuracy' is not an object")
        checkpoint = data.get("checkpoint")
        try:
            signature = None if data.get("signature") is None else Signature.from_dict(data["signature"])
        except SignatureError as err:
            raise invalid_description(str(err)) from None
        return cls(data["method"], data["precision"], InputSpec.from_dict(data.get("input")),
                   OutputSpec.from_dict(data.get("output")), None if checkpoint is None else str(checkpoint), sha,
                   None if accuracy is None else dict(accuracy),
                   {k: v for k, v in data.items() if k not in cls._FIXED}, dict(found), data["created"],
                   data["format"], _data_settings(data.get("data")), signature)

    @classmethod
    def from_json(cls, text: str | bytes) -> ArtifactDescription:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise invalid_description(f"not JSON ({err})") from None
        return cls.from_dict(data)


def _data_settings(raw: Any) -> dict[str, Any] | None:
    from litquant.data.formats import DataError
    from litquant.data.settings import parse_data_settings

    try:
        return None if raw is None else parse_data_settings(raw)
    except DataError as err:
        raise invalid_description(f"'data': {err}") from None


def describe(method: str, precision: str, *, datamodule: Any = None, checkpoint: str | os.PathLike | None = None,
             checkpoint_sha256: str | None = None, input_names: Iterable[str] = ("x",),
             input_shape: Iterable[str | int] = ("batch", 1, 28, 28), output_shape: Iterable[str | int] | None = None,
             accuracy: dict[str, Any] | None = None, signature: Signature | None = None,
             **extra: Any) -> ArtifactDescription:
    """A description for a model of ``datamodule``'s dataset (default MNIST): normalisation and classes from its
    spec, and its data settings; an ``output_shape`` other than ``["batch", classes]`` drops the class names.
    ``checkpoint_sha256`` defaults to the hash of ``checkpoint``'s bytes now. A ``signature`` gives the input names,
    the first input's shape and the logits output's shape; it is kept only for a model with several inputs or
    outputs (one tensor in, one tensor out is described by ``input`` and ``output`` alone)."""
    from litquant.data import DATASETS
    from litquant.data.settings import data_settings

    if signature is not None:
        input_names, input_shape = [s.name for s in signature.inputs], signature.inputs[0].shape
        output_shape = signature.outputs[signature.logits_index or 0].shape
        if len(signature.inputs) == 1 and signature.structure == "tensor":
            signature = None
    spec = DATASETS["mnist"] if datamodule is None else getattr(datamodule, "spec", None)
    if checkpoint is not None and checkpoint_sha256 is None:
        checkpoint_sha256 = file_sha256(checkpoint)
    if spec is None:  # a data module of the user's: nothing known about normalisation or classes
        output = tuple(output_shape) if output_shape is not None else ("batch",)
        image = InputSpec(tuple(input_names), tuple(input_shape), "float32", None, type(datamodule).__name__, None)
    else:
        output = ("batch", len(spec.classes)) if output_shape is None else tuple(output_shape)
        image = InputSpec(tuple(input_names), tuple(input_shape), "float32",
                          {"formula": "(pixel / 255 - mean) / std", "mean": spec.mean, "std": spec.std}, spec.name,
                          tuple(spec.classes) if output[1:] == (len(spec.classes),) else None)
    logits = "logits" if signature is None or signature.logits is None else signature.logits
    return ArtifactDescription(method, precision, image, OutputSpec(logits, output),
                               None if checkpoint is None else str(checkpoint), checkpoint_sha256, accuracy,
                               dict(extra),
                               data=data_settings(datamodule) if getattr(datamodule, "hparams", None) else None,
                               signature=signature)


# -- checking a model against its description --------------------------------------------------------
def description_mismatch(path: Path, why: str) -> ArtifactError:
    """The error for a model that does not match the description in its file."""
    return ArtifactError(f"{path}: the model does not match its description ({why}); make it again with litquant")


def check_io(path: Path, description: ArtifactDescription, inputs: list[tuple[str, list, str]],
              outputs: list[tuple[list, str]]) -> None:
    """Inputs ``(name, shape, dtype)`` and outputs ``(shape, dtype)`` of the model against the description
    (dimension 0 is the batch; names are compared only where the model has them)."""
    spec = description.input

    def mismatch(what: str) -> ArtifactError:
        return description_mismatch(path, what)

    if description.signature is not None:
        if found := check_signature(description.signature, inputs, outputs):
            raise mismatch(found)
        return
    if len(inputs) != len(spec.names):
        raise mismatch(f"{len(inputs)} inputs, described {len(spec.names)}")
    name, shape, dtype = inputs[0]
    if name and name not in spec.names:
        raise mismatch(f"input {name!r}, described {list(spec.names)}")
    if list(shape[1:]) != list(spec.shape[1:]) or dtype != spec.dtype:
        raise mismatch(f"input {dtype} {['batch', *shape[1:]]}, described {spec.dtype} {list(spec.shape)}")
    if len(outputs) != 1 or list(outputs[0][0][1:]) != list(description.output.shape[1:]) \
            or outputs[0][1] != description.output.dtype:
        found = [f"{d} {['batch', *s[1:]]}" for s, d in outputs]
        raise mismatch(f"outputs {found}, described {description.output.dtype} {list(description.output.shape)}")


def check_precision(int8_operators: Iterable[str], precision: str) -> str | None:
    """Why a graph with these int8 operators contradicts the described ``precision`` (``None`` when they agree):
    an ``int8`` graph quantizes, an ``fp32`` one does not."""
    int8 = sorted(int8_operators)
    if precision not in ("int8", "fp32"):
        return f"its precision {precision!r} is neither int8 nor fp32"
    if precision == "int8" and not int8:
        return "it is described as int8 but its graph has no int8 operators"
    if precision == "fp32" and int8:
        return f"it is described as fp32 but its graph calls {int8[0]}"
    return None


def saturation_warning(path: str | os.PathLike, description: ArtifactDescription, info: Any = None) -> str | None:
    """One line when ``description``'s ``int8_range`` says it was quantized with full ranges for a CPU with VNNI
    (int8 kernels that saturate without VNNI) and ``info`` (a :class:`~litquant.cpu.CpuInfo`, default: this CPU
    as the artifact's runtime sees it) has no VNNI; ``None`` otherwise (also for artifacts that record no
    choice, and for full ranges forced with ``--quant.reduce_range false`` on a CPU without VNNI: their
    description says so)."""
    entry = description.extra.get("int8_range")
    if not isinstance(entry, Mapping) or entry.get("saturates_without_vnni") is not True \
            or entry.get("chosen_for_vnni") is not True:
        return None
    from litquant.cpu import cpu_info, onnxruntime_cpu_info  # cpu_info imports torch, which a .pt2 has loaded
    from litquant.images import printable

    info = info or (onnxruntime_cpu_info() if Path(path).suffix == ".onnx" else cpu_info())
    if info.has_vnni:
        return None
    chosen_for = printable(entry.get("chosen_for"), limit=40)  # hand-edited files may hold anything
    return (f"{printable(Path(path).name)} was quantized with full 8-bit int8 ranges for a CPU with VNNI "
            f"({chosen_for}); this CPU ({info.isa}) has no VNNI, so its int8 kernels may saturate and "
            "lose accuracy: quantize it on this machine or with --quant.reduce_range true")

