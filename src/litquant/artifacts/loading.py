"""Loading a model: an artifact (``.pt2`` or ``.onnx``) from the file alone, checked before anything of it runs, or
a Lightning checkpoint (``.ckpt``); and reading an artifact's embedded description.

Loading never executes code from the file, and the bytes checked are the bytes loaded: see
:mod:`litquant.artifacts.pt2_file` and :mod:`litquant.artifacts.onnx_file`. Importing this module, reading a
description and loading and running an ``.onnx`` artifact on numpy arrays do not import PyTorch.

Example::

    from litquant.artifacts.loading import load_artifact, load_model, read_description

    print(read_description("out/ptq.pt2").checkpoint_sha256)   # from inside the file, no JSON needed
    model = load_artifact("out/ptq.pt2")                       # compiles with inductor freezing on first use
    logits = model(images)                                     # normalised float [N, 1, 28, 28] -> [N, 10]
    model = load_model("runs/checkpoints/last.ckpt")           # the same call for a checkpoint
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from litquant.artifacts.description import ArtifactDescription, saturation_warning
from litquant.artifacts.errors import ArtifactError, Int8RangeWarning
from litquant.artifacts.files import artifact_suffix, read_artifact_bytes
from litquant.artifacts.signature import flat_outputs

if TYPE_CHECKING:
    from torch import nn

__all__ = ["RUNNERS", "LoadedModel", "Runner", "load_artifact", "load_model", "read_description"]

#: How a ``.pt2`` runs: ``compile`` (``torch.compile`` with inductor freezing, compiled in this process on first use
#: per batch size, :mod:`litquant.artifacts.compiled`), ``aot`` (AOTInductor packages per batch size, built once and
#: cached on disk, :mod:`litquant.artifacts.aot`), ``eager`` (the exported graph as is, built from the checked file
#: by :mod:`litquant.artifacts.pt2_graph` without ``torch.export.load``: int8 ops as dequantize/fp32/quantize).
Runner = Literal["compile", "aot", "eager"]
RUNNERS: tuple[str, ...] = get_args(Runner)


class LoadedModel:
    """A loaded artifact, callable on normalised float images ``[N, 1, 28, 28]``, returning logits; a model with
    several inputs or outputs (its description's ``signature``) is called with its inputs (keyword ones by name)
    and returns what the model returns (a tuple or dict); :meth:`logits` gives its class logits. A ``.pt2`` runs
    under ``torch.inference_mode()``; an ``.onnx`` takes numpy arrays (returning numpy arrays) or torch tensors
    (returning torch tensors).

    Attributes:
        path: the artifact file.
        description: its embedded :class:`~litquant.artifacts.description.ArtifactDescription`.
        kind: ``"pt2"`` or ``"onnx"``.
        module: a ``.pt2``'s exported module (``None`` for an ``.onnx``).
    """

    def __init__(self, path: Path, description: ArtifactDescription, kind: str, runner: Callable[..., Any],
                 module: nn.Module | None = None,
                 mode: Callable[[], AbstractContextManager] = contextlib.nullcontext) -> None:
        self.path = path
        self.description = description
        self.kind = kind
        self.module = module
        self._runner = runner
        self._mode = mode

    @property
    def meta(self) -> dict[str, Any]:
        """The description as a dict (the layout of the readable JSON copy)."""
        return self.description.to_dict()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._mode():
            return self._runner(*args, **kwargs)

    def logits(self, *args: Any, **kwargs: Any) -> Any:
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


def read_description(path: str | os.PathLike) -> ArtifactDescription:
    """The description embedded in an artifact, read with the same checks as :func:`load_artifact` (the JSON
    beside the file is never read)."""
    path = Path(path)
    raw = read_artifact_bytes(path)
    if artifact_suffix(path) == ".pt2":
        from litquant.artifacts.pt2_file import Pt2Archive  # imports torch

        return Pt2Archive(path, raw).description()
    from litquant.artifacts.onnx_file import onnx_description, read_onnx

    return onnx_description(path, read_onnx(path, raw))


def _load_pt2(path: Path, raw: bytes, runner: Runner, progress: bool, batch_sizes: Sequence[int]) -> LoadedModel:
    import torch

    if runner == "eager":  # built from the parsed file: no torch.export deserializer, no TorchDynamo
        from litquant.artifacts.pt2_graph import load_eager_module

        module, description = load_eager_module(path, raw)
        # nn.Module's call, hooks included, without torch.fx's wrapper: it prints the generated code's traceback
        # to stderr before any error, which reaches the user as one line
        run = functools.partial(torch.nn.Module.__call__, module)
        return LoadedModel(path, description, "pt2", run, module, torch.inference_mode)
    from litquant.artifacts.pt2_file import load_program

    program, description = load_program(path, raw)
    module = program.module()
    int8 = description.precision == "int8"
    if runner == "aot":
        from litquant.artifacts.aot import aot_runner

        if description.signature is not None and len(description.signature.inputs) > 1:
            raise ArtifactError(f"{path}: the aot runner takes one input and this model takes "
                                f"{len(description.signature.inputs)}; load it with runner='compile' or 'eager'")

        # the package is built from, and keyed by, the bytes checked and loaded here; never read from elsewhere
        run = aot_runner(program, batch_sizes, sha256=hashlib.sha256(raw).hexdigest(), check_int8=int8,
                         progress=progress)
    else:
        from litquant.artifacts.compiled import compiled_runner

        run = compiled_runner(module, progress, f"{description.precision} model", program if int8 else None,
                              batch_sizes)
    return LoadedModel(path, description, "pt2", run, module, torch.inference_mode)


def load_artifact(path: str | os.PathLike, *, runner: Runner = "compile", threads: int | None = None,
                  progress: bool = True, batch_sizes: Sequence[int] | None = None,
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
        batch_sizes: ``compile``/``aot``: the static batch sizes compiled (on first use; ``None``:
            :data:`~litquant.artifacts.batching.COMPILED_BATCH_SIZES`); smaller batches are padded up to the next
            one, larger ones run in chunks of the largest.
        compile: the older spelling: ``False`` is ``runner="eager"``.

    Raises:
        ArtifactError: a missing file, an unknown kind, not an artifact, or a model that does not match its
            description.
        UnsafeArtifactError: a file holding what could run code (nothing of it was run).

    An int8 artifact quantized with full 8-bit ranges for a CPU with VNNI, loaded on a CPU without, warns
    (:class:`~litquant.artifacts.errors.Int8RangeWarning`, one line in the CLI): its kernels may saturate here.
    """
    if compile is False:
        if runner not in ("compile", "eager"):
            raise ValueError(f"compile=False contradicts runner={runner!r}; pass runner alone")
        runner = "eager"
    if runner not in RUNNERS:
        raise ValueError(f"runner {runner!r}: expected one of {', '.join(RUNNERS)}")
    sizes = None if batch_sizes is None else list(batch_sizes)
    if sizes is not None and (not sizes or min(sizes) < 1):
        raise ValueError(f"batch_sizes must be positive integers, got {sizes}")
    path = Path(path)
    suffix = artifact_suffix(path)
    raw = read_artifact_bytes(path)
    if suffix == ".pt2":
        from litquant.artifacts.batching import COMPILED_BATCH_SIZES

        loaded = _load_pt2(path, raw, runner, progress, sizes or COMPILED_BATCH_SIZES)
    else:
        from litquant.artifacts.onnx_file import onnx_runner

        description, run = onnx_runner(path, raw, threads)
        loaded = LoadedModel(path, description, "onnx", run)
    if message := saturation_warning(path, loaded.description):
        warnings.warn(message, Int8RangeWarning, stacklevel=2)
    return loaded


def load_model(path: str | os.PathLike, runner: Runner = "compile", threads: int | None = None,
               batch_sizes: Sequence[int] | None = None, progress: bool = True) -> Callable[..., Any]:
    """A callable on normalised float images ``[N, 1, 28, 28]`` returning logits, from any model file: a ``.ckpt``
    (the eager fp32 classifier through the safe checkpoint loader, run under ``torch.inference_mode()``) or a
    ``.pt2``/``.onnx`` artifact (:func:`load_artifact`).

    Args:
        path: the model file.
        runner: how a ``.pt2`` runs (:data:`Runner`).
        threads: ONNX Runtime intra-op threads of an ``.onnx`` (``None``: its default).
        batch_sizes: the static batch sizes a compiled ``.pt2`` is built for (``None``: the default ones).
        progress: print a note to stderr when compiling.

    Raises:
        ArtifactError: see :func:`load_artifact`.
        CheckpointError: a ``.ckpt`` that is not a litquant classifier's checkpoint.
    """
    if str(path).endswith(".ckpt"):
        import torch

        from litquant.checkpoints import load_classifier

        module = load_classifier(path).eval()

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(x)

        return run
    return load_artifact(path, runner=runner, threads=threads, progress=progress, batch_sizes=batch_sizes)
