"""The fp32 side of quantization: the checkpoint's fp32 artifacts (``fp32.pt2``,
``onnxruntime.fp32.onnx``) and the ONNX export every ONNX method starts from; and the refusal to write an
artifact whose checkpoint changed meanwhile.

Example::

    from litquant.quantization.export import export_fp32

    export_fp32("fp32.ckpt", "out", datamodule=dm)            # out/fp32.pt2, out/onnxruntime.fp32.onnx
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from litquant import library_internal_warnings_ignored
from litquant.artifacts.description import ArtifactDescription, describe
from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.files import file_sha256
from litquant.artifacts.loading import read_description
from litquant.artifacts.saving import save_onnx
from litquant.artifacts.signature import program_signature
from litquant.files import atomic_path
from litquant.quantization.model_io import CheckedNet, ModelSpec, checked_net
from litquant.quantization.pt2e import Example, batch_dynamic_shapes, export_program, save_program

__all__ = ["FP32_ONNX", "FP32_PT2", "export_fp32", "export_onnx", "fp32_onnx_for", "refuse_if_changed"]

#: The fp32 program's file name in an output folder.
FP32_PT2 = "fp32.pt2"
#: The fp32 ONNX model's file name in an output folder (the ONNX methods' size reference and cache).
FP32_ONNX = "onnxruntime.fp32.onnx"


def refuse_if_changed(checkpoint: str | os.PathLike, sha256: str) -> None:
    """Refuse to write an artifact whose checkpoint file changed while it was being made."""
    if file_sha256(checkpoint) != sha256:
        raise ArtifactError(f"{checkpoint} changed while it was being quantized; run again once it is written")


def export_onnx(net: torch.nn.Module, path: str | os.PathLike, opset: int = 18, *, example: Example | None = None,
                input_names: Sequence[str] = ("x",), output_names: Sequence[str] = ("logits",)) -> Path:
    """Export ``net`` to ONNX, atomically, with a dynamic batch dimension on every input.

    Args:
        net: the fp32 network (put back in its mode afterwards).
        path: the ``.onnx`` file written.
        opset: the ONNX opset.
        example: its example inputs ``(args, kwargs)``; default: one float image batch ``[2, 1, 28, 28]``.
        input_names: the ONNX names of the inputs, positional then keyword (default ``x``).
        output_names: the ONNX names of the outputs, in order (default ``logits``).
    """
    path = Path(path)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    args, kwargs = example or ((torch.zeros(2, 1, 28, 28),), {})
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    try:
        with atomic_path(path) as tmp, library_internal_warnings_ignored():  # torch pickles a deprecated LeafSpec
            program = torch.onnx.export(net, args, kwargs=kwargs, dynamo=True, opset_version=opset,
                                        input_names=list(input_names), output_names=list(output_names),
                                        dynamic_shapes=batch_dynamic_shapes(net, args, kwargs), verbose=False)
            program.save(str(tmp))
    finally:
        net.train(was_training)
    return path


def _export_fp32_onnx(checked: CheckedNet, path: Path, description: ArtifactDescription) -> Path:
    """Export the checked network to ONNX as ``path``, the description embedded (the export runs in a private
    folder)."""
    with tempfile.TemporaryDirectory(prefix="litquant-onnx-") as scratch:
        exported = export_onnx(checked.net, Path(scratch) / "fp32.onnx", example=checked.example,
                               input_names=checked.input_names(), output_names=checked.output_names())
        return save_onnx(exported, path, description)


def _fp32_onnx_description(checked: CheckedNet, checkpoint: str | os.PathLike, sha256: str,
                           datamodule: Any) -> ArtifactDescription:
    return describe("onnxruntime-fp32", "fp32", datamodule=datamodule, checkpoint=checkpoint, checkpoint_sha256=sha256,
                    signature=checked.signature)


def fp32_onnx_for(checked: CheckedNet, out_dir: Path, private: Path, checkpoint: str | os.PathLike, sha256: str,
                  datamodule: Any) -> Path:
    """A private copy of the checkpoint's fp32 ONNX model: ``<out_dir>/onnxruntime.fp32.onnx`` when the hash
    embedded in it is that checkpoint's, else a new export, which then replaces the cache. Quantizing the
    private copy keeps a concurrent run that rewrites the cache from changing this run's model."""
    cache = out_dir / FP32_ONNX
    description = _fp32_onnx_description(checked, checkpoint, sha256, datamodule)
    if cache.is_file():
        with contextlib.suppress(OSError):
            private.write_bytes(cache.read_bytes())
        with contextlib.suppress(ArtifactError, OSError):
            cached = read_description(private)
            if cached.method == "onnxruntime-fp32" and cached.checkpoint_sha256 == sha256:
                return private
    _export_fp32_onnx(checked, private, description)
    save_onnx(private, cache, description)
    return private


def export_fp32(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, datamodule: Any = None,
                onnx: bool = True, progress: bool = True, model: ModelSpec | None = None) -> Path:
    """Export the checkpoint's fp32 model as ``<out>/fp32.pt2`` and, with ``onnx``,
    ``<out>/onnxruntime.fp32.onnx`` (each describing itself, with a readable JSON copy). Returns the ``.pt2``.

    Args:
        checkpoint: a Lightning checkpoint of ``model.module_class`` (default
            :class:`~litquant.model.MNISTClassifier`).
        out_dir: folder of the artifacts.
        datamodule: the data whose input spec and normalisation the descriptions record (default MNIST's).
        onnx: also export the fp32 ONNX model.
        progress: progress output on stderr.
        model: the LightningModule class and its class-logits output
            (:class:`~litquant.quantization.model_io.ModelSpec`).

    Raises:
        ArtifactError: the checkpoint's model does not fit the data, or the checkpoint changed meanwhile.
    """
    out_dir = Path(out_dir)
    sha256 = file_sha256(checkpoint)
    checked = checked_net(checkpoint, datamodule, model)
    if progress:
        print("exporting the fp32 model (torch.export)...", file=sys.stderr, flush=True)
    program = export_program(checked.net, *checked.example)
    refuse_if_changed(checkpoint, sha256)
    path = save_program(program, out_dir / FP32_PT2, describe("fp32", "fp32", datamodule=datamodule,
                                                                checkpoint=checkpoint, checkpoint_sha256=sha256,
                                                                signature=program_signature(program,
                                                                                            checked.logits_index)))
    if onnx:
        if progress:
            print("exporting the fp32 model (ONNX)...", file=sys.stderr, flush=True)
        _export_fp32_onnx(checked, out_dir / FP32_ONNX, _fp32_onnx_description(checked, checkpoint, sha256,
                                                                                 datamodule))
    return path
