"""The model a method quantizes: the checkpoint's LightningModule (``MNISTClassifier`` by default, or the class the
user names), the network captured from it, its example inputs, how a batch's inputs become its arguments, and which
of its outputs is the class logits; checked against the data before any work is done.

``MNISTClassifier``'s network is its ``model`` (``Net``); any other LightningModule is captured whole. The example
inputs are the module's ``example_input_array``: a tensor (the one input), a tuple (the positional inputs) or a
dict (the keyword inputs); a data batch's inputs take the same form.

Example::

    from litquant.quantization.model_io import ModelSpec, checked_net

    checked = checked_net("mine.ckpt", datamodule, ModelSpec(MyModule, logits_output=0))
    args, kwargs = checked.inputs(batch_inputs)
    logits = checked.logits(checked.net(*args, **kwargs))
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import lightning.pytorch as L
import torch

from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.signature import Signature, flat_outputs, program_signature
from litquant.checkpoints import class_path, load_module
from litquant.data.batches import labelled_batches
from litquant.data.formats import DATASETS
from litquant.model import MNISTClassifier
from litquant.quantization.pt2e import Example, canonical_inputs, export_program, normalize_example

__all__ = ["CheckedNet", "ModelSpec", "check_module", "checked_net"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which LightningModule class a checkpoint is loaded into, and which of its outputs is the class logits.

    Attributes:
        module_class: the class (never one a checkpoint names); default :class:`~litquant.model.MNISTClassifier`.
        logits_output: for a ``forward`` with several outputs, the class logits' tuple position or dict key;
            default: the one output, or the dict key ``"logits"``.
        init_args: ``__init__`` arguments that replace the checkpoint's hyper-parameters of the same name.
    """

    module_class: type[L.LightningModule] = MNISTClassifier
    logits_output: str | int | None = None
    init_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        """The MNIST classifier, quantized as its network ``model``."""
        return self.module_class is MNISTClassifier

    @property
    def prefix(self) -> str:
        """Where the quantized network's layers sit in the LightningModule (``model.`` for MNIST's)."""
        return "model." if self.is_default else ""

    def load(self, checkpoint: str | os.PathLike) -> L.LightningModule:
        """The checkpoint's weights in a new ``module_class`` (:func:`~litquant.checkpoints.load_module`)."""
        return load_module(checkpoint, self.module_class, init_args=self.init_args)

    def net_of(self, module: L.LightningModule) -> torch.nn.Module:
        """The network quantized in ``module``."""
        return module.model if self.is_default else module


@dataclasses.dataclass
class CheckedNet:
    """The checkpoint's network in eval mode, with what every method needs to feed it and read it."""

    spec: ModelSpec
    module: L.LightningModule
    net: torch.nn.Module
    example: Example
    logits_index: int
    forward_signature: inspect.Signature

    def inputs(self, value: Any) -> Example:
        """A batch's inputs (a tensor, a tuple or a dict, as ``example_input_array``) as ``(args, kwargs)`` laid
        out as the capture was: positional-or-keyword inputs positionally, keyword-only ones by name."""
        if isinstance(value, torch.Tensor):
            args, kwargs = (value,), {}
        elif isinstance(value, Mapping):
            args, kwargs = (), dict(value)
        else:
            args, kwargs = tuple(value), {}
        return canonical_inputs(self.forward_signature, args, kwargs)

    def example_on(self, device: torch.device | str) -> Example:
        """The example inputs ``(args, kwargs)`` on ``device``."""
        args, kwargs = self.example
        return (tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args),
                {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})

    def logits(self, output: Any) -> torch.Tensor:
        """The class logits in an output of the network (or of its int8 model, or a loaded artifact)."""
        return flat_outputs(output)[self.logits_index]

    def __call__(self, value: Any) -> torch.Tensor:
        """The fp32 network's class logits for a batch's inputs."""
        args, kwargs = self.inputs(value)
        return self.logits(self.net(*args, **kwargs))

    @cached_property
    def signature(self) -> Signature:
        """Every input and output of the fp32 network, from a ``torch.export`` of it."""
        program = export_program(self.net, *self.example)
        return program_signature(program, self.logits_index)

    def input_names(self) -> list[str]:
        """The names of the inputs, positional then keyword."""
        return [spec.name for spec in self.signature.inputs]

    def output_names(self) -> list[str]:
        """The names of the outputs, in order (``logits`` for one tensor)."""
        return [spec.name for spec in self.signature.outputs]


def _logits_index(output: Any, logits_output: str | int | None, name: str) -> int:
    """Where the class logits are among ``output``'s tensors."""
    tensors = flat_outputs(output)
    if isinstance(output, Mapping):
        keys = [str(key) for key in output]
        if logits_output is None and "logits" in keys:
            logits_output = "logits"
        if isinstance(logits_output, str) and logits_output in keys:
            return keys.index(logits_output)
        if isinstance(logits_output, int) and -len(keys) <= logits_output < len(keys):
            return logits_output % len(keys)
        raise ArtifactError(f"{name} returns a dict ({', '.join(keys)}): name the class logits with "
                            "--logits_output KEY")
    if len(tensors) == 1 and logits_output in (None, 0, -1):
        return 0
    if isinstance(logits_output, int) and -len(tensors) <= logits_output < len(tensors):
        return logits_output % len(tensors)
    raise ArtifactError(f"{name} returns {len(tensors)} outputs: name the class logits with --logits_output "
                        f"POSITION (0 to {len(tensors) - 1})")


def _shown_shape(shape: Any) -> str:
    return f"[N, {', '.join(map(str, list(shape)[1:]))}]"


def checked_net(checkpoint: str | os.PathLike, datamodule: Any, model: ModelSpec | None = None) -> CheckedNet:
    """The checkpoint's network (loaded into ``model.module_class``, :func:`~litquant.checkpoints.load_module`),
    checked by :func:`check_module`.

    Raises:
        CheckpointError: the checkpoint does not load into ``model.module_class``.
        ArtifactError: see :func:`check_module`.
    """
    model = model or ModelSpec()
    return check_module(model.load(checkpoint), datamodule, model, name=f"{checkpoint}: its model")


def check_module(module: L.LightningModule, datamodule: Any, model: ModelSpec | None = None, *,
                 name: str | None = None) -> CheckedNet:
    """``module``'s network in eval mode, checked: it runs on its ``example_input_array`` and returns class logits
    ``[N, classes]`` (the data's classes when the data says how many), and a batch of the data's validation inputs
    runs through it.

    Args:
        module: the LightningModule (of ``model.module_class``).
        datamodule: the data (``None``: MNIST's 10 classes, no batch checked).
        model: which output is the class logits (default: MNIST's classifier).
        name: how errors name the model (default: its class).

    Raises:
        ArtifactError: the network has no example inputs, fails on them or on the data, or returns no class logits.
    """
    model = model or ModelSpec()
    module = module.eval()
    net = model.net_of(module).eval()
    if name is None or not model.is_default:
        name = class_path(type(module))
    if module.example_input_array is None:
        raise ArtifactError(f"{name} has no example_input_array: set it in __init__ to the inputs forward takes (a "
                            "tensor, a tuple of positional inputs or a dict of keyword inputs)")
    forward = inspect.signature(net.forward)
    args, kwargs = normalize_example(module.example_input_array)
    example = canonical_inputs(forward, args, kwargs)
    spec = DATASETS["mnist"] if datamodule is None else getattr(datamodule, "spec", None)
    classes = len(spec.classes) if spec is not None else None
    shown = " and ".join(_shown_shape(v.shape) for v in (*example[0], *example[1].values())
                         if isinstance(v, torch.Tensor))
    try:
        with torch.no_grad():
            output = net(*example[0], **example[1])
    except (RuntimeError, TypeError, ValueError) as err:
        raise ArtifactError(f"{name} fails on its example_input_array ({str(err).strip().splitlines()[0]}); "
                            "nothing was written") from None
    index = _logits_index(output, model.logits_output, name)
    logits = flat_outputs(output)[index]
    batch = len(next(v for v in (*example[0], *example[1].values()) if isinstance(v, torch.Tensor)))
    if logits.dim() != 2 or logits.shape[0] != batch or (classes is not None and logits.shape[1] != classes):
        found = _shown_shape(logits.shape) if logits.dim() >= 1 and logits.shape[0] == batch else list(logits.shape)
        wanted = f"[N, {classes}] (the {classes} classes of the data)" if classes else "[N, classes]"
        raise ArtifactError(f"{name} maps {shown} to {found}, not to {wanted}; quantize a checkpoint of a "
                            f"{classes or 'classifier'}{'-class' if classes else ''} model, nothing was written")
    checked = CheckedNet(model, module, net, example, index, forward)
    if datamodule is None:
        return checked
    inputs, _ = next(labelled_batches(datamodule, "val", limit=1))
    try:
        with torch.no_grad():
            checked(inputs)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ArtifactError(f"{name} fails on the data's inputs ({str(err).strip().splitlines()[0]}): the data's "
                            "batches must be (inputs, target), the inputs as example_input_array") from None
    return checked
