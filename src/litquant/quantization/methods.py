"""The registry of quantization methods: each method is one :class:`QuantizationMethod` object (its name, the
label of the report, the artifact's file name, the observer it calibrates with by default, how it runs), made
in its own module and added with :func:`register_method`. :func:`~litquant.quantization.quantize`, the report,
the benchmarks and the CLI iterate :data:`METHODS`; nothing else knows the list.

A method gets a :class:`QuantizeJob`: the checked fp32 model of the checkpoint (MNIST's, or the LightningModule
class a :class:`~litquant.quantization.model_io.ModelSpec` names), the data, the
:class:`~litquant.quantization.config.QuantizeConfig`, and the shared last steps (accuracy on a few validation
batches, the check that the checkpoint did not change, the save with the description embedded).

Example (a new method: one module with one class and one registration; the quantization chapter of the
docs walks through a whole one)::

    from litquant.quantization.methods import PT2EMethod, register_method

    class MyMethod(PT2EMethod):
        name, label = "my-method", "My int8 method (PT2E)"

        def program(self, job):                     # -> (int8 ExportedProgram, what the description records)
            ...

    register_method(MyMethod())
"""

from __future__ import annotations

import abc
import copy
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from litquant.artifacts.description import ArtifactDescription, describe
from litquant.artifacts.files import file_sha256
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.saving import save_onnx
from litquant.artifacts.signature import program_signature
from litquant.cpu import RangeChoice, choose_reduce_range, cpu_info
from litquant.data.batches import sample_count
from litquant.evaluation import evaluate
from litquant.quantization.calibration import PTQ_OBSERVER, CalibrationConfig
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.export import FP32_ONNX, FP32_PT2, refuse_if_changed
from litquant.quantization.model_io import CheckedNet, ModelSpec, checked_net
from litquant.quantization.pt2e import save_program

__all__ = ["BASELINES", "METHODS", "Fp32Baseline", "PT2EMethod", "QuantizationMethod", "QuantizeJob", "get_entry",
           "get_method", "int8_description", "prepare_data", "register_method", "run_method", "unregister_method"]

#: The registered methods by name, in the report's order (registration order).
METHODS: dict[str, QuantizationMethod] = {}


@dataclass(frozen=True)
class Fp32Baseline:
    """An fp32 model the int8 ones are compared with: named, labelled and found in the output folder like a
    method's artifact, but made by :func:`~litquant.quantization.export.export_fp32`, not quantized.

    Attributes:
        name: the model's name in the report.
        label: the model in the report's tables.
        file_name: its file in the output folder.
        compiled: a ``.pt2`` run compiled with inductor (``True``), with eager kernels (``False``); ``None``:
            not a ``.pt2``.
        cold_start: what a fresh process loads to time its cold start: its ``artifact`` or the ``checkpoint``.
    """

    name: str
    label: str
    file_name: str
    compiled: bool | None = None
    cold_start: Literal["artifact", "checkpoint"] = "artifact"


#: The fp32 baselines by name, in the report's order: every int8 model is compared with the fastest of them.
BASELINES: dict[str, Fp32Baseline] = {baseline.name: baseline for baseline in (
    Fp32Baseline("fp32", "fp32 (not quantized)", FP32_PT2, compiled=False, cold_start="checkpoint"),
    Fp32Baseline("fp32-compiled", "fp32, torch.compile (inductor)", FP32_PT2, compiled=True),
    Fp32Baseline("onnxruntime-fp32", "ONNX Runtime fp32", FP32_ONNX),
)}


class QuantizationMethod(abc.ABC):
    """One way of turning a fp32 checkpoint into an int8 artifact.

    Attributes:
        name: the ``--method`` value and the artifact description's ``method``.
        label: the method in the report's table.
        default_observer: the activation observer used when ``QuantizeConfig.observer`` is unset.
        onnx: its artifact is ONNX (the report then also exports the fp32 ONNX model to compare sizes).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    default_observer: ClassVar[str] = "minmax"
    onnx: ClassVar[bool] = False

    @property
    def file_name(self) -> str:
        """The artifact's file name in the output folder."""
        return f"{self.name}.int8.onnx" if self.onnx else f"{self.name}.pt2"

    @abc.abstractmethod
    def run(self, job: QuantizeJob) -> Path:
        """Quantize ``job.net`` and write ``job.path`` (with :meth:`QuantizeJob.save_program` or
        :meth:`QuantizeJob.save_onnx`); return the path."""

    def __repr__(self) -> str:
        return f"<quantization method {self.name!r}>"


class PT2EMethod(QuantizationMethod):
    """A method that produces an int8 ``torch.export`` program, saved as ``<name>.pt2``."""

    default_observer: ClassVar[str] = PTQ_OBSERVER

    @abc.abstractmethod
    def program(self, job: QuantizeJob) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
        """The int8 program and what the description records about how it was made."""

    def run(self, job: QuantizeJob) -> Path:
        program, extra = self.program(job)
        return job.save_program(program, **extra)


def register_method(method: QuantizationMethod) -> QuantizationMethod:
    """Add ``method`` to :data:`METHODS` (a second method of the same name is refused); returns it."""
    if method.name in METHODS and METHODS[method.name] is not method:
        raise ValueError(f"a quantization method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (a test's toy method, once the test is done)."""
    METHODS.pop(name, None)


def get_method(name: str) -> QuantizationMethod:
    """The registered method ``name``.

    Raises:
        ValueError: no method of that name is registered (the message lists the known ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown quantization method {name!r}: choose one of {', '.join(METHODS)}") from None


def get_entry(name: str) -> QuantizationMethod | Fp32Baseline:
    """The fp32 baseline (:data:`BASELINES`) or the registered method (:data:`METHODS`) named ``name``.

    Raises:
        ValueError: neither has that name.
    """
    return BASELINES[name] if name in BASELINES else get_method(name)


def int8_description(method: QuantizationMethod, *, datamodule: Any, checkpoint: Path, checkpoint_sha256: str,
                     calibration: CalibrationConfig, range_choice: RangeChoice,
                     **extra: Any) -> ArtifactDescription:
    """The description of an int8 artifact made by ``method`` from ``checkpoint``, with the entries every int8
    artifact records; what :meth:`QuantizeJob.description` and the tuner's kept model record.

    Args:
        method: the registered method; its ``default_observer`` fills an unset ``calibration.observer``.
        datamodule: the data the input spec and normalisation are read from.
        checkpoint: the checkpoint the artifact comes from, and ``checkpoint_sha256`` the hash of its bytes.
        calibration: how it was calibrated (its ``reduce_range`` resolved).
        range_choice: the int8 range chosen for this CPU (the CPU it was quantized and checked on is recorded).
        extra: entries added or replacing the common ones (``signature``: every input and output of the model,
            see :func:`~litquant.artifacts.description.describe`).
    """
    common = {"cpu": cpu_info().as_dict(), "calibration": calibration.describe(method.default_observer),
              "int8_range": range_choice.describe()}
    return describe(method.name, "int8", datamodule=datamodule, checkpoint=checkpoint,
                    checkpoint_sha256=checkpoint_sha256, **{**common, **extra})


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


@dataclass
class QuantizeJob:
    """One run of a method on one checkpoint: what the method needs, and the shared steps it ends with."""

    method: QuantizationMethod
    checkpoint: Path
    datamodule: Any
    out_dir: Path
    config: QuantizeConfig = field(default_factory=QuantizeConfig)
    progress: bool = True
    model: ModelSpec = field(default_factory=ModelSpec)

    def __post_init__(self) -> None:
        self.checkpoint_sha256 = file_sha256(self.checkpoint)
        #: ``config.reduce_range`` resolved for this CPU, once: what every step uses and the description records
        self.range_choice = choose_reduce_range(self.config.reduce_range)
        #: the options with ``reduce_range`` resolved (:attr:`range_choice`) and the method's observer filled in
        self.config = self.config.replace(reduce_range=self.range_choice.reduce_range,
                                          observer=self.config.observer or self.method.default_observer)
        #: the checkpoint's network, checked, with its example inputs and the way to feed and read it
        self.checked: CheckedNet = checked_net(self.checkpoint, self.datamodule, self.model)
        #: the checkpoint's network in eval mode; a QAT method fine-tunes it in place
        self.net: torch.nn.Module = self.checked.net
        #: an untouched copy, the reference of the accuracy comparison
        self.reference: torch.nn.Module = copy.deepcopy(self.net)

    @property
    def path(self) -> Path:
        return self.out_dir / self.method.file_name

    @property
    def calibration(self) -> CalibrationConfig:
        """The config's calibration: the method's observer when none was chosen, ``reduce_range`` resolved."""
        return self.config.calibration

    def note(self, message: str) -> None:
        _note(self.progress, message)

    def example_batch(self, size: int = 2) -> torch.Tensor:
        """``size`` normalised training images, a copy (a saved example holds no whole batch)."""
        images, _ = next(self.datamodule.normalized_batches("train", limit=1))
        return images[:size].clone()

    def description(self, **extra: Any) -> ArtifactDescription:
        """The description with the common entries; ``extra`` adds or replaces entries (``int8_range``...)."""
        return int8_description(self.method, datamodule=self.datamodule, checkpoint=self.checkpoint,
                                checkpoint_sha256=self.checkpoint_sha256, calibration=self.calibration,
                                range_choice=self.range_choice, **extra)

    def accuracy(self, model: Any) -> dict[str, Any] | None:
        """int8 and fp32 accuracy on ``config.accuracy_batches`` validation batches (of 256 for MNIST's data)
        (``None`` for 0)."""
        batches = self.config.accuracy_batches
        if not batches:
            return None
        io = {"inputs": self.checked.inputs, "logits": self.checked.logits}
        return {"split": "val", "samples": sample_count(self.datamodule, "val", 256, batches),
                "int8": evaluate(model, self.datamodule, "val", 256, batches, **io),
                "fp32": evaluate(self.reference, self.datamodule, "val", 256, batches, **io)}

    def unchanged(self) -> None:
        """Refuse to write the artifact if the checkpoint changed since the job began."""
        refuse_if_changed(self.checkpoint, self.checkpoint_sha256)

    def save_program(self, program: torch.export.ExportedProgram, **extra: Any) -> Path:
        """Measure, check the checkpoint is unchanged, and save the program as ``job.path``."""
        accuracy = self.accuracy(program.module())
        self.unchanged()
        signature = program_signature(program, self.checked.logits_index)
        return save_program(program, self.path, self.description(accuracy=accuracy, signature=signature, **extra))

    def save_onnx(self, int8: Path, **extra: Any) -> Path:
        """Embed the description in the int8 ONNX model ``int8``, measure it, and save it as ``job.path``."""
        extra = {"signature": self.checked.signature, **extra}
        with tempfile.TemporaryDirectory(prefix="litquant-onnx-") as scratch:
            described = save_onnx(int8, Path(scratch) / "described.onnx", self.description(**extra))
            accuracy = self.accuracy(load_artifact(described))
            self.unchanged()
            return save_onnx(described, self.path, self.description(accuracy=accuracy, **extra))


def prepare_data(datamodule: Any) -> None:
    """Make the data module's splits ready outside a ``Trainer``: ``prepare_data``, then ``setup("fit")`` (and
    ``setup("test")`` for a data module other than MNIST's, whose setup reads every split at once)."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    if not hasattr(datamodule, "normalized_batches"):
        datamodule.setup("test")


def run_method(name: str, checkpoint: str | os.PathLike, datamodule: Any, out_dir: str | os.PathLike,
               config: QuantizeConfig | None = None, progress: bool = True, model: ModelSpec | None = None) -> Path:
    """Run the registered method ``name`` (what :func:`~litquant.quantization.quantize` does, see there)."""
    method = get_method(name)
    prepare_data(datamodule)
    start = time.perf_counter()
    _note(progress, f"{name}: quantizing {checkpoint} ...")
    job = QuantizeJob(method, Path(checkpoint), datamodule, Path(out_dir), config or QuantizeConfig(), progress,
                      model or ModelSpec())
    path = method.run(job)
    _note(progress, f"{name}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in "
                    f"{time.perf_counter() - start:.0f} s")
    return path
