"""The artifact format: a typed description embedded in the model file, saving, safe loading, the loaded model.

An artifact is one file, ``.pt2`` (``torch.export``) or ``.onnx`` (ONNX Runtime). Its
:class:`ArtifactDescription` (method, precision, input and output spec, library versions, the checkpoint and the
SHA-256 of its bytes, accuracy, method-specific details) travels **inside** it: the ``.pt2`` extra file
``extra/litquant.json``, the ONNX ``metadata_props`` entry ``litquant.description``. The JSON beside the file
(``model.pt2`` → ``model.json``) is a readable copy written after the artifact; nothing here reads it, so a crash
between the two writes, or a stale copy, cannot make the loader trust a wrong description. The loader checks the
embedded input and output spec against the model's own inputs and outputs; a mismatch is an error.

**Loading never executes code from the file, and the bytes checked are the bytes loaded.** The file is read into
memory once. For a ``.pt2`` (a zip archive) :func:`load_artifact` then:

* parses the zip central directory and refuses duplicate names, names that collide when letter case is ignored
  (torch's zip reader matches names case-insensitively), and every entry outside the layout ``torch.export.save``
  writes for plain tensors: pickled or legacy ``.pt`` weights and constants, custom and opaque objects, native
  libraries, AOTInductor packages;
* caps each entry's and the total inflated size from the declared sizes before inflating anything, and again while
  inflating (in chunks, stopping at the cap: declared sizes can lie);
* parses ``models/model.json`` and the weight and constant configs into a strict schema and replaces them by a
  canonical copy rebuilt from the parsed values (:mod:`litquant.pt2_schema`: registered operators of allowed
  namespaces, plain names, no higher-order operators, size-comparison guards, shapes of a small grammar), and
  refuses example inputs that do not load with ``torch.load(weights_only=True)``;
* rebuilds a clean archive in memory from the checked entries only and hands only that to ``torch.export.load``;
* checks the loaded graph again (allowed operators only, no sub-module) and its int8 operators against the
  described precision.

A ``.onnx`` file is protobuf data: its bytes are parsed once, every tensor and node at any depth is checked
(:mod:`litquant.onnx_check`: no external data, standard operator domains, no local functions), and the same bytes
are handed to ONNX Runtime, which runs no custom-op libraries.

Example::

    from litquant.artifacts import load_artifact, read_description

    print(read_description("out/ptq.pt2").checkpoint_sha256)   # from inside the file, no JSON needed
    model = load_artifact("out/ptq.pt2")                       # compiles with inductor freezing on first use
    logits = model(images)                                     # normalised float [N, 1, 28, 28] -> [N, 10]
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import io
import json
import logging
import math
import os
import platform
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from litquant.files import atomic_path, write_bytes, write_json
from litquant.onnx_check import int8_operators, unsafe_reason
from litquant.pt2_schema import (
    OPERATOR_NAMESPACES,
    PYTHON_OPERATORS,
    SchemaError,
    canonical_program,
    canonical_tensor_config,
    check_precision,
    int8_targets,
)
from litquant.signature import Signature, SignatureError, check_signature, flat_outputs

__all__ = [
    "ARTIFACT_FORMAT",
    "COMPILED_BATCH_SIZES",
    "RUNNERS",
    "MAX_ENTRY_BYTES",
    "MAX_TOTAL_BYTES",
    "ArtifactDescription",
    "ArtifactError",
    "InputSpec",
    "Int8RangeWarning",
    "LoadedModel",
    "OutputSpec",
    "Runner",
    "UnsafeArtifactError",
    "describe",
    "file_sha256",
    "program_io",
    "load_artifact",
    "load_program",
    "read_description",
    "saturation_warning",
    "save_onnx",
    "save_pt2",
    "sidecar_path",
    "versions",
]

#: Version tag of the description's layout.
ARTIFACT_FORMAT = "litquant-artifact/2"
#: Name of the description inside a ``.pt2`` (``extra/<name>``) and key in an ONNX model's ``metadata_props``.
PT2_DESCRIPTION = "litquant.json"
ONNX_DESCRIPTION = "litquant.description"
#: Largest inflated size of one ``.pt2`` entry, and of all entries (and largest artifact file) together.
MAX_ENTRY_BYTES = 256 * 2**20
MAX_TOTAL_BYTES = 512 * 2**20
MAX_ENTRIES = 10_000
#: Batch sizes a compiled ``.pt2`` is specialised for; other sizes are padded up to the next one, and
#: larger inputs run in chunks of the largest. Inductor's int8 kernels do not support a dynamic batch.
COMPILED_BATCH_SIZES = (1, 8, 32, 64, 128, 256)
#: How a ``.pt2`` runs: ``compile`` (``torch.compile`` with inductor freezing, compiled in this process on first use
#: per batch size), ``aot`` (AOTInductor packages per batch size, built once and cached on disk, see
#: :mod:`litquant.compiled`), ``eager`` (the exported graph as is: int8 ops as dequantize/fp32/quantize).
Runner = Literal["compile", "aot", "eager"]
RUNNERS: tuple[str, ...] = get_args(Runner)


class ArtifactError(ValueError):
    """The file is missing, of an unknown kind, or not a valid artifact."""


class Int8RangeWarning(UserWarning):
    """An artifact quantized with full 8-bit ranges for a CPU with VNNI is loaded on a CPU without VNNI."""


class UnsafeArtifactError(ArtifactError):
    """The file holds payloads whose loading could execute code; it was not loaded."""


# -- the description --------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Versions of the libraries that make and run the artifacts, and of Python."""
    found = {"python": platform.python_version()}
    for package in ("litquant", "torch", "torchao", "lightning", "onnx", "onnxruntime", "onnxscript"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _invalid(what: str) -> ArtifactError:
    return ArtifactError(f"invalid artifact description: {what}; make the artifact again with litquant")


def _shape(value: Any, what: str) -> tuple[str | int, ...]:
    if (not isinstance(value, (list, tuple)) or not value or value[0] != "batch"
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value[1:])):
        raise _invalid(f"{what} shape {value!r} is not ['batch', positive sizes...]")
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
            raise _invalid("'input' is not an object")
        names = data.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise _invalid(f"input names {names!r} are not a list of names")
        if data.get("dtype") != "float32":
            raise _invalid(f"input dtype {data.get('dtype')!r} is not 'float32'")
        norm = data.get("normalization")
        if norm is not None:
            values = [norm.get(k) if isinstance(norm, Mapping) else None for k in ("mean", "std")]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or values[1] <= 0:
                raise _invalid(f"input normalization {norm!r} needs a finite mean and a positive std")
        classes = data.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
            raise _invalid(f"input classes {classes!r} are not a list of names")
        dataset = data.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise _invalid(f"input dataset {dataset!r} is not a name")
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
            raise _invalid("'output' is not an object with a name")
        if data.get("dtype") != "float32":
            raise _invalid(f"output dtype {data.get('dtype')!r} is not 'float32'")
        return cls(data["name"], _shape(data.get("shape"), "output"), "float32")


@dataclasses.dataclass(frozen=True)
class ArtifactDescription:
    """Everything an artifact says about itself; embedded in the file, copied to the JSON beside it.

    ``extra`` holds what a method adds (calibration, fine-tuning, the ONNX Runtime weight-format check...); in the
    dict form its keys sit at the top level, beside the fixed ones. ``data``: the data settings of the model's
    data module (:mod:`litquant.data.settings`), used by the commands that load the artifact as a checkpoint's.
    ``signature`` lists every input and output of a model with several (see :mod:`litquant.signature`); ``input``
    is then its first input and ``output`` its class logits. Without one, the model takes ``input`` and returns
    ``output``.
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
            raise _invalid(f"output shape {list(self.output.shape)} does not match {len(classes)} classes")

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
            raise _invalid("not a JSON object")
        if data.get("format") != ARTIFACT_FORMAT:
            raise _invalid(f"format {data.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
        for key in ("method", "precision", "created"):
            if not isinstance(data.get(key), str):
                raise _invalid(f"{key!r} is missing")
        sha = data.get("checkpoint_sha256")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise _invalid(f"checkpoint_sha256 {sha!r} is not a SHA-256 hex digest")
        found = data.get("versions")
        if not isinstance(found, Mapping) or not all(isinstance(v, str) for v in found.values()):
            raise _invalid("'versions' is not an object of strings")
        accuracy = data.get("accuracy")
        if accuracy is not None and not isinstance(accuracy, Mapping):
            raise _invalid("'accuracy' is not an object")
        checkpoint = data.get("checkpoint")
        try:
            signature = None if data.get("signature") is None else Signature.from_dict(data["signature"])
        except SignatureError as err:
            raise _invalid(str(err)) from None
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
            raise _invalid(f"not JSON ({err})") from None
        return cls.from_dict(data)


def _data_settings(raw: Any) -> dict[str, Any] | None:
    from litquant.data import DataError
    from litquant.data.settings import parse_data_settings

    try:
        return None if raw is None else parse_data_settings(raw)
    except DataError as err:
        raise _invalid(f"'data': {err}") from None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(method: str, precision: str, *, datamodule: Any = None, checkpoint: str | os.PathLike | None = None,
             checkpoint_sha256: str | None = None, input_names: Iterable[str] = ("x",),
             input_shape: Iterable[str | int] = ("batch", 1, 28, 28), output_shape: Iterable[str | int] | None = None,
             accuracy: dict[str, Any] | None = None, signature: Signature | None = None,
             **extra: Any) -> ArtifactDescription:
    """A description for a model of ``datamodule``'s dataset (default MNIST): normalisation and classes from its
    spec, and its data settings; an ``output_shape`` other than ``["batch", classes]`` drops the class names.
    ``checkpoint_sha256`` defaults to the hash of ``checkpoint``'s bytes now. A ``signature`` (a model with several
    inputs or outputs) gives the input names, the first input's shape and the logits output's shape."""
    from litquant.data import DATASETS
    from litquant.data.settings import data_settings

    if signature is not None:
        input_names, input_shape = [s.name for s in signature.inputs], signature.inputs[0].shape
        output_shape = signature.outputs[signature.logits_index or 0].shape
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


def sidecar_path(artifact: str | os.PathLike) -> Path:
    """``model.pt2`` → ``model.json``; ``onnxruntime.int8.onnx`` → ``onnxruntime.int8.json``: the readable copy."""
    return Path(artifact).with_suffix(".json")


def _write_readable_copy(path: Path, description: ArtifactDescription) -> None:
    write_json(sidecar_path(path), {**description.to_dict(), "artifact": path.name,
                                    "size_bytes": path.stat().st_size})


def _as_description(description: ArtifactDescription | Mapping[str, Any]) -> ArtifactDescription:
    return description if isinstance(description, ArtifactDescription) else \
        ArtifactDescription.from_dict({"format": ARTIFACT_FORMAT, **description})


# -- checking a model against its description --------------------------------------------------------
def _check_io(path: Path, description: ArtifactDescription, inputs: list[tuple[str, list, str]],
              outputs: list[tuple[list, str]]) -> None:
    """Inputs ``(name, shape, dtype)`` and outputs ``(shape, dtype)`` of the model against the description
    (dimension 0 is the batch; names are compared only where the model has them)."""
    spec = description.input

    def mismatch(what: str) -> ArtifactError:
        return ArtifactError(f"{path}: the model does not match its description ({what}); make it again with "
                             "litquant")

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


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def program_io(program: torch.export.ExportedProgram) -> tuple[list, list]:
    """A program's user inputs ``("", shape, dtype)`` and outputs ``(shape, dtype)``, ``"batch"`` for symbolic
    dimensions."""
    nodes = {node.name: node for node in program.graph.nodes}
    inputs = []
    for spec in program.graph_signature.input_specs:
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
            value = nodes[spec.arg.name].meta.get("val")
            shape = [int(d) if isinstance(d, int) else "batch" for d in getattr(value, "shape", ())]
            inputs.append(("", shape, _dtype_name(getattr(value, "dtype", None))))  # called by position
    outputs = []
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    for value in [arg.meta.get("val") for arg in output_node.args[0] if isinstance(arg, torch.fx.Node)]:
        outputs.append(([int(d) if isinstance(d, int) else "batch" for d in getattr(value, "shape", ())],
                        _dtype_name(getattr(value, "dtype", None))))
    return inputs, outputs


# -- saving -----------------------------------------------------------------------------------------
def save_pt2(program: torch.export.ExportedProgram, path: str | os.PathLike,
             description: ArtifactDescription | Mapping[str, Any]) -> Path:
    """Save ``program`` as ``.pt2`` with ``description`` inside (atomically), then the readable JSON copy."""
    path = Path(path)
    description = _as_description(description)
    inputs, outputs = program_io(program)
    _check_io(path, description, inputs, outputs)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp, extra_files={PT2_DESCRIPTION: description.to_json()})
    _write_readable_copy(path, description)
    return path


def save_onnx(model: str | os.PathLike | bytes, path: str | os.PathLike,
              description: ArtifactDescription | Mapping[str, Any]) -> Path:
    """Write the ONNX model ``model`` (a file or its bytes) to ``path`` with ``description`` in its
    ``metadata_props`` (atomically), then the readable JSON copy."""
    import onnx

    path = Path(path)
    description = _as_description(description)
    proto = onnx.load_from_string(model if isinstance(model, bytes) else Path(model).read_bytes())
    kept = [p for p in proto.metadata_props if p.key != ONNX_DESCRIPTION]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=ONNX_DESCRIPTION, value=description.to_json())
    _check_io(path, description, *_onnx_io(proto))
    write_bytes(path, proto.SerializeToString())
    _write_readable_copy(path, description)
    return path


# -- reading ----------------------------------------------------------------------------------------
def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact; run `litquant quantize` first or check the path")
    size = path.stat().st_size
    if size > MAX_TOTAL_BYTES:
        raise UnsafeArtifactError(f"{path}: refused to load, the file is {size / 2**20:.0f} MiB, more than the "
                                  f"{MAX_TOTAL_BYTES // 2**20} MiB an artifact may have")
    with open(path, "rb") as file:
        return file.read(MAX_TOTAL_BYTES + 1)


#: The ``.pt2`` layout of a plain-tensor program named ``model`` (names inside the archive's root folder).
_PT2_LAYOUT = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                         r"|models/model\.json|data/sample_inputs/model\.pt"
                         r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
                         r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+"
                         r"|extra/[A-Za-z0-9_][A-Za-z0-9_.-]*")
_PT2_REQUIRED = ("archive_format", "archive_version", ".data/version", "models/model.json",
                 "data/sample_inputs/model.pt")
class _Pt2Archive:
    """The checked entries of a ``.pt2`` file (inner name → bytes), read from one in-memory copy of the file."""

    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        self.entries = self._read_entries(raw)
        self._check_payloads()

    def refuse(self, why: str) -> UnsafeArtifactError:
        return UnsafeArtifactError(f"{self.path}: refused to load, {why}; nothing from the file was run (only load "
                                   ".pt2 files written by litquant or torch.export.save of plain tensors)")

    def _read_entries(self, raw: bytes) -> dict[str, bytes]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
            infos = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
            raise ArtifactError(f"{self.path}: not a .pt2 archive ({err}); export it again") from None
        if len(infos) > MAX_ENTRIES:
            raise self.refuse(f"{len(infos)} entries")
        roots = {info.filename.split("/", 1)[0] for info in infos}
        if len(roots) != 1 or any("/" not in info.filename for info in infos):
            raise self.refuse("unexpected archive layout")
        root = roots.pop() + "/"
        seen: dict[str, str] = {}
        for info in infos:
            inner = info.filename[len(root):]
            folded = info.filename.casefold()
            if folded in seen:
                what = "appears twice" if seen[folded] == info.filename else f"collides with {seen[folded]!r}"
                raise self.refuse(f"entry {inner!r} {what}")
            seen[folded] = info.filename
            if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".pt"):
                raise self.refuse(f"legacy pickled entry {inner!r}")
            if not _PT2_LAYOUT.fullmatch(inner):
                raise self.refuse(f"unexpected entry {inner!r}")
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.refuse(f"entry {inner!r} is encrypted or compressed with an unsupported method")
            if info.file_size > MAX_ENTRY_BYTES:
                raise self.refuse(f"entry {inner!r} declares {info.file_size / 2**20:.0f} MiB, more than "
                                  f"{MAX_ENTRY_BYTES // 2**20} MiB")
        declared = sum(info.file_size for info in infos)
        if declared > MAX_TOTAL_BYTES:
            raise self.refuse(f"its entries declare {declared / 2**20:.0f} MiB, more than "
                              f"{MAX_TOTAL_BYTES // 2**20} MiB")
        missing = [name for name in _PT2_REQUIRED if root + name not in seen.values()]
        if missing:
            raise ArtifactError(f"{self.path}: not a torch.export archive (no {missing[0]!r}); export it again")
        entries, total = {}, 0
        for info in infos:
            data = self._inflate(archive, info, MAX_TOTAL_BYTES - total)
            total += len(data)
            entries[info.filename[len(root):]] = data
        return entries

    def _inflate(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
        """An entry's bytes, read in chunks and stopped as soon as they pass its declared size or a cap."""
        limit = min(info.file_size, MAX_ENTRY_BYTES, budget)
        chunks, size = [], 0
        try:
            with archive.open(info) as entry:
                while chunk := entry.read(2**20):
                    size += len(chunk)
                    if size > limit:
                        raise self.refuse(f"entry {info.filename!r} inflates past its declared size or the cap")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
            if isinstance(err, UnsafeArtifactError):
                raise
            raise ArtifactError(f"{self.path}: entry {info.filename!r} is damaged ({err}); export it again") \
                from None
        return b"".join(chunks)

    def _check_payloads(self) -> None:
        """Check every entry torch reads; the JSON ones are replaced by their canonical rebuild (see
        :mod:`litquant.pt2_schema`), so only parsed values reach ``torch.export.load``."""
        for name, data in self.entries.items():
            if name.endswith("_config.json") or name == "models/model.json":
                try:
                    self.entries[name] = canonical_program(data) if name == "models/model.json" else \
                        canonical_tensor_config(data, name.rsplit("/", 1)[0] + "/", self.entries)
                except SchemaError as err:
                    raise self.refuse(f"{name!r} is outside the schema litquant loads ({err})") from None
            elif name.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(data), weights_only=True)
                except Exception as err:  # noqa: BLE001 - any failure means: not plain tensors
                    raise self.refuse(f"example inputs are not plain tensors ({type(err).__name__})") from None
            elif name.startswith("extra/"):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.refuse(f"extra file {name!r} is not text") from None

    def description(self) -> ArtifactDescription:
        data = self.entries.get(f"extra/{PT2_DESCRIPTION}")
        if data is None:
            raise ArtifactError(f"{self.path}: no litquant description inside; make it with `litquant quantize` "
                                "(or litquant.artifacts.save_pt2)")
        return ArtifactDescription.from_json(data)

    def clean_copy(self) -> io.BytesIO:
        """A new archive holding exactly the checked entries (uncompressed), for ``torch.export.load``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as clean:
            for name, data in self.entries.items():
                clean.writestr(zipfile.ZipInfo(f"model/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)
        buffer.seek(0)
        return buffer


def _onnx_proto(path: Path, raw: bytes) -> Any:
    import onnx

    try:
        proto = onnx.load_from_string(raw)
    except Exception as err:  # noqa: BLE001 - any parse failure: not an ONNX model
        raise ArtifactError(f"{path}: not an ONNX model ({type(err).__name__}); export it again") from None
    if why := unsafe_reason(proto):
        raise UnsafeArtifactError(f"{path}: refused to load, {why}; only load self-contained .onnx files of "
                                  "standard operators, as litquant writes them")
    return proto


def _onnx_description(path: Path, proto: Any) -> ArtifactDescription:
    text = next((p.value for p in proto.metadata_props if p.key == ONNX_DESCRIPTION), None)
    if text is None:
        raise ArtifactError(f"{path}: no litquant description inside; make it with `litquant quantize` "
                            "(or litquant.artifacts.save_onnx)")
    return ArtifactDescription.from_json(text)


def _onnx_io(proto: Any) -> tuple[list, list]:
    import onnx

    def shape_and_type(value: Any) -> tuple[list, str]:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else "batch" for d in tensor.shape.dim]
        return shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name

    initializers = {t.name for t in proto.graph.initializer}
    inputs = [(v.name, *shape_and_type(v)) for v in proto.graph.input if v.name not in initializers]
    return inputs, [shape_and_type(v) for v in proto.graph.output]


def read_description(path: str | os.PathLike) -> ArtifactDescription:
    """The description embedded in an artifact, read with the same checks as :func:`load_artifact` (the JSON
    beside the file is never read)."""
    path = Path(path)
    raw = _read_file(path)
    if path.suffix == ".pt2":
        return _Pt2Archive(path, raw).description()
    if path.suffix == ".onnx":
        return _onnx_description(path, _onnx_proto(path, raw))
    raise ArtifactError(f"{path}: unknown artifact type {path.suffix!r}; expected .pt2 or .onnx")


# -- loading ----------------------------------------------------------------------------------------
def saturation_warning(path: str | os.PathLike, description: ArtifactDescription, info: Any = None) -> str | None:
    """One line when ``description``'s ``int8_range`` says it was quantized with full ranges for a CPU with VNNI
    (int8 kernels that saturate without VNNI) and ``info`` (a :class:`~litquant.cpu.CpuInfo`, default: this CPU)
    has no VNNI; ``None`` otherwise (also for artifacts that record no choice, and for full ranges forced with
    ``--quant.reduce_range false`` on a CPU without VNNI: their description says so)."""
    from litquant.cpu import cpu_info
    from litquant.images import printable

    entry = description.extra.get("int8_range")
    if not isinstance(entry, Mapping) or entry.get("saturates_without_vnni") is not True \
            or entry.get("chosen_for_vnni") is not True:
        return None
    info = info or cpu_info()
    if info.has_vnni:
        return None
    chosen_for = printable(entry.get("chosen_for"), limit=40)  # hand-edited files may hold anything
    return (f"{printable(Path(path).name)} was quantized with full 8-bit int8 ranges for a CPU with VNNI "
            f"({chosen_for}); this CPU ({info.isa}) has no VNNI, so its int8 kernels may saturate and "
            "lose accuracy: quantize it on this machine or with --quant.reduce_range true")


class LoadedModel:
    """A loaded artifact, callable on normalised float images ``[N, 1, 28, 28]``, returning logits; a model with
    several inputs or outputs (its description's ``signature``) is called with its inputs (keyword ones by name)
    and returns what the model returns (a tuple or dict); :meth:`logits` gives its class logits.

    Attributes:
        path: the artifact file.
        description: its embedded :class:`ArtifactDescription`.
        kind: ``"pt2"`` or ``"onnx"``.
    """

    def __init__(self, path: Path, description: ArtifactDescription, kind: str,
                 runner: Callable[..., Any], module: nn.Module | None = None) -> None:
        self.path = path
        self.description = description
        self.kind = kind
        self.module = module
        self._runner = runner

    @property
    def meta(self) -> dict[str, Any]:
        """The description as a dict (the layout of the readable JSON copy)."""
        return self.description.to_dict()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode():
            return self._runner(*args, **kwargs)

    def logits(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The class logits of the model's output for these inputs (the output its description names)."""
        signature = self.description.signature
        if signature is None:
            return self(*args, **kwargs)
        given = len(args) + len(kwargs)
        if given != len(signature.inputs):
            raise ArtifactError(f"{self.path.name} takes {len(signature.inputs)} inputs "
                                f"({', '.join(s.name for s in signature.inputs)}), got {given}: give each one")
        if signature.logits_index is None:
            raise ArtifactError(f"{self.path.name} does not say which of its outputs "
                                f"({', '.join(s.name for s in signature.outputs)}) is the class logits; make it "
                                "again naming it (QuantizationAwareTraining(logits_output=...))")
        return flat_outputs(self(*args, **kwargs))[signature.logits_index]

    def __repr__(self) -> str:
        return f"LoadedModel({str(self.path)!r}, kind={self.kind!r}, method={self.description.method!r})"


@contextlib.contextmanager
def _freezing() -> Iterator[None]:
    """Inductor's ``freezing`` (int8 weights folded into the kernels) for this call only, not for the process:
    dynamo reads the flag while tracing (parameters stay constants), inductor while compiling. A plain
    save-and-restore, since ``config.patch`` costs tens of microseconds on every batch-1 call."""
    config = torch._inductor.config
    previous = config.freezing
    config.freezing = True
    try:
        yield
    finally:
        config.freezing = previous


def _inductor_backend(program: torch.export.ExportedProgram | None, name: str,
                      compilations: list[dict[str, int] | None]) -> Callable[..., Any]:
    """A ``torch.compile`` backend: inductor with freezing, run only with gradients off, and for an int8
    ``program`` a check of the generated code after every (re)compilation (dynamo recompiles on a new batch
    size, thread count or grad mode): int8 kernels for every layer and no fp32 convolution or matmul, else
    :class:`~litquant.compiled.Int8FallbackError`. Each compilation appends its kernel counts (``None``
    without ``program``) to ``compilations``."""
    from unittest import mock

    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.graph import GraphLowering

    from litquant.compiled import Int8FallbackError, check_int8_kernels, inductor_build

    def backend(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., Any]:
        if torch.is_grad_enabled() or not torch._inductor.config.freezing:
            # inductor freezes weights (and fuses int8 ops) only with gradients off: this compilation would run
            # the int8 graph with fp32 kernels, several times slower, with no error
            raise Int8FallbackError(f"{name}: compiling with gradients enabled or inductor's freezing off (the "
                                    "int8 model would run fp32 kernels); call it under torch.inference_mode()")
        sources: list[str] = []
        with inductor_build(), mock.patch.object(GraphLowering, "save_output_code", sources.append):
            compiled = compile_fx(graph, example_inputs)
        compilations.append(check_int8_kernels(program, "\n".join(sources)) if program is not None else None)
        return compiled

    return backend


def _padded(tensor: torch.Tensor, start: int, length: int, size: int) -> torch.Tensor:
    """``length`` rows of ``tensor`` from ``start``, padded with zeros up to ``size`` rows."""
    chunk = tensor[start:start + length]
    return chunk if size == length else torch.cat([chunk, chunk.new_zeros(size - length, *chunk.shape[1:])])


def _compiled_runner(module: nn.Module, progress: bool, name: str,
                     program: torch.export.ExportedProgram | None = None,
                     batch_sizes: Sequence[int] = COMPILED_BATCH_SIZES) -> Callable[..., Any]:
    """``module`` compiled with inductor (freezing), per batch size of ``batch_sizes``; with the int8
    ``program`` given, every compilation is checked to run int8 kernels (see :func:`_inductor_backend`)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  registers int8 lowerings

    from litquant.compiled import Int8FallbackError
    from litquant.private_cache import private_inductor_cache

    compilations: list[dict[str, int] | None] = []
    with private_inductor_cache():  # torch.compile itself reads inductor's cache folder (its bisector's state)
        compiled = torch.compile(module, backend=_inductor_backend(program, name, compilations), dynamic=False)
    seen: set[int] = set()
    sizes = sorted(set(batch_sizes))

    def run(*args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        count = len((*args, *kwargs.values())[0])
        outputs = []
        for start in range(0, count, sizes[-1]):
            length = min(sizes[-1], count - start)
            size = next(b for b in sizes if b >= length)

            first = size not in seen
            if first and progress:
                print(f"compiling {name} with inductor for batch {size} (takes a few seconds)...",
                      file=sys.stderr, flush=True)
            seen.add(size)
            try:  # a first call traces (dynamo reads inductor's cache folder too), any call may recompile
                with _freezing(), private_inductor_cache() if first else contextlib.nullcontext():
                    output = compiled(*(_padded(t, start, length, size) for t in args),
                                      **{k: _padded(t, start, length, size) for k, t in kwargs.items()})
            except torch._dynamo.exc.BackendCompilerFailed as err:  # our checks' own errors, not dynamo's wrapper
                if isinstance(err.inner_exception, Int8FallbackError | OSError):  # OSError: an untrusted cache
                    raise err.inner_exception from None
                raise
            outputs.append(torch.utils._pytree.tree_map(lambda t, n=length: t[:n], output))
        if len(outputs) == 1:
            return outputs[0]
        leaves, specs = zip(*map(torch.utils._pytree.tree_flatten, outputs), strict=True)
        return torch.utils._pytree.tree_unflatten([torch.cat(parts) for parts in zip(*leaves, strict=True)], specs[0])

    run.compilations = compilations  # type: ignore[attr-defined]  # what each (re)compilation was checked to run
    return run


@contextlib.contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """Keep ``torch.export.load`` from logging a traceback for a file it cannot read (we report one line)."""
    logger = logging.getLogger("torch.export")
    quiet = logging.Filter()
    quiet.filter = lambda record: record.levelno >= logging.ERROR  # type: ignore[method-assign]
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _check_graph(path: Path, program: torch.export.ExportedProgram, description: ArtifactDescription) -> None:
    """The loaded graph again, as torch built it: registered operator overloads of the allowed namespaces and the
    listed Python operators only (no higher-order operator, no sub-module), and int8 operators exactly when the
    description says int8."""
    targets = set()
    for module in program.graph_module.modules():
        if module is not program.graph_module:
            raise UnsafeArtifactError(f"{path}: refused to run, its graph holds a sub-module")
        for node in module.graph.nodes:
            target = node.target
            allowed = node.op in ("placeholder", "output") or node.op == "call_function" and (
                isinstance(target, torch._ops.OpOverload) and not isinstance(target, torch._ops.HigherOrderOperator)
                and target.namespace in OPERATOR_NAMESPACES
                or f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}" in PYTHON_OPERATORS)
            if not allowed:
                raise UnsafeArtifactError(f"{path}: refused to run, its graph calls {target!r}, not a registered "
                                          "operator of " + ", ".join(sorted(OPERATOR_NAMESPACES)))
            if isinstance(target, torch._ops.OpOverload):
                targets.add(f"torch.ops.{target.namespace}.{target._opname}.{target._overloadname}")
    if why := check_precision(int8_targets(targets), description.precision):
        raise ArtifactError(f"{path}: the model does not match its description ({why}); make it again with "
                            "litquant")


def load_program(path: str | os.PathLike, raw: bytes | None = None) -> tuple[torch.export.ExportedProgram,
                                                                           ArtifactDescription]:
    """The checked program and description of a ``.pt2`` (``raw``: its bytes, when already read): only a clean
    in-memory copy of the allowed entries reaches ``torch.export.load``."""
    path = Path(path)
    raw = _read_file(path) if raw is None else raw
    archive = _Pt2Archive(path, raw)
    description = archive.description()
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  quantized_decomposed ops

    try:
        with _quiet_torch_export():
            program = torch.export.load(archive.clean_copy())
    except Exception as err:  # noqa: BLE001 - one line for any deserialisation failure
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise ArtifactError(f"{path}: cannot load ({message}); export it again") from None
    _check_graph(path, program, description)
    _check_io(path, description, *program_io(program))
    return program, description


def _load_pt2(path: Path, raw: bytes, runner: Runner, progress: bool, batch_sizes: Sequence[int]) -> LoadedModel:
    program, description = load_program(path, raw)
    module = program.module()
    int8 = description.precision == "int8"
    if runner == "aot":
        from litquant.compiled import aot_runner

        if description.signature is not None and len(description.signature.inputs) > 1:
            raise ArtifactError(f"{path}: the aot runner takes one input and this model takes "
                                f"{len(description.signature.inputs)}; load it with runner='compile' or 'eager'")

        # the package is built from, and keyed by, the bytes checked and loaded here; never read from elsewhere
        run = aot_runner(program, batch_sizes, sha256=hashlib.sha256(raw).hexdigest(), check_int8=int8,
                         progress=progress)
    elif runner == "compile":
        run = _compiled_runner(module, progress, f"{description.precision} model", program if int8 else None,
                               batch_sizes)
    else:
        run = module
    return LoadedModel(path, description, "pt2", run, module)


def _load_onnx(path: Path, raw: bytes, threads: int | None) -> LoadedModel:
    import onnxruntime as ort

    proto = _onnx_proto(path, raw)
    description = _onnx_description(path, proto)
    _check_io(path, description, *_onnx_io(proto))
    if why := check_precision(int8_operators(proto), description.precision):
        raise ArtifactError(f"{path}: the model does not match its description ({why}); make it again with "
                            "litquant")
    options = ort.SessionOptions()
    # idle intra-op threads must not spin: beside PyTorch's OpenMP pool (report, bench, serve) a spinning pool
    # takes the cores PyTorch's threads wait for, and both run several times slower
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    level = description.extra.get("onnxruntime", {}).get("graph_optimization_level", "ORT_ENABLE_ALL")
    if level not in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        raise _invalid(f"graph_optimization_level {level!r}")
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    try:
        session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise ArtifactError(f"{path}: ONNX Runtime cannot load it ({message}); export it again") from None
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        logits = session.run(None, {name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(logits).to(x.device)

    return LoadedModel(path, description, "onnx", run)


def load_artifact(path: str | os.PathLike, *, runner: Runner = "compile", threads: int | None = None,
                  progress: bool = True, batch_sizes: Sequence[int] = COMPILED_BATCH_SIZES,
                  compile: bool | None = None) -> LoadedModel:
    """Load a ``.pt2`` or ``.onnx`` artifact from the file alone, refusing files that could run code (see the
    module docstring) and files whose model does not match their embedded description.

    Args:
        path: the artifact.
        runner: ``.pt2`` only, how the graph runs (see :data:`Runner`): ``compile`` (``torch.compile`` with
            inductor freezing, so that int8 kernels really run; compiled on first use per batch size), ``aot``
            (AOTInductor packages built from this file's bytes and cached under ``$LITQUANT_CACHE``: a second
            process starts fast), ``eager`` (the exported graph as is). ``.onnx`` files always run in ONNX Runtime.
        threads: ONNX Runtime intra-op threads (``None``: its default). PyTorch uses its global setting.
        progress: print a note to stderr when compiling.
        batch_sizes: ``compile``/``aot``: the static batch sizes compiled (on first use); smaller batches are
            padded up to the next one, larger ones run in chunks of the largest.
        compile: the older spelling: ``False`` is ``runner="eager"``.

    An int8 artifact quantized with full 8-bit ranges for a CPU with VNNI, loaded on a CPU without, warns
    (:class:`Int8RangeWarning`, one line in the CLI): its kernels may saturate here.
    """
    if compile is False:
        if runner not in ("compile", "eager"):
            raise ValueError(f"compile=False contradicts runner={runner!r}; pass runner alone")
        runner = "eager"
    if runner not in RUNNERS:
        raise ValueError(f"runner {runner!r}: expected one of {', '.join(RUNNERS)}")
    sizes = list(batch_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes must be positive integers, got {sizes}")
    path = Path(path)
    if path.suffix not in (".pt2", ".onnx"):
        raise ArtifactError(f"{path}: unknown artifact type {path.suffix!r}; expected .pt2 or .onnx")
    raw = _read_file(path)
    loaded = _load_pt2(path, raw, runner, progress, sizes) if path.suffix == ".pt2" else _load_onnx(path, raw, threads)
    if message := saturation_warning(path, loaded.description):
        warnings.warn(message, Int8RangeWarning, stacklevel=2)
    return loaded
