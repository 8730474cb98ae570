"""Saving an artifact: the model file with its description inside (written atomically), then the readable JSON
copy beside it (:func:`~litquant.artifacts.files.sidecar_path`). The model's inputs and outputs are checked
against the description before anything is written.

Example::

    from litquant.artifacts.description import describe
    from litquant.artifacts.saving import save_pt2

    save_pt2(program, "out/ptq.pt2", describe("ptq", "int8", checkpoint="runs/last.ckpt"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from litquant.artifacts.description import (
    ARTIFACT_FORMAT,
    ONNX_DESCRIPTION,
    PT2_DESCRIPTION,
    ArtifactDescription,
    check_io,
)
from litquant.artifacts.files import sidecar_path
from litquant.artifacts.pt2_file import program_io
from litquant.files import atomic_path, write_bytes, write_json

__all__ = ["save_onnx", "save_pt2"]


def _write_readable_copy(path: Path, description: ArtifactDescription) -> None:
    write_json(sidecar_path(path), {**description.to_dict(), "artifact": path.name,
                                    "size_bytes": path.stat().st_size})


def _as_description(description: ArtifactDescription | Mapping[str, Any]) -> ArtifactDescription:
    return description if isinstance(description, ArtifactDescription) else \
        ArtifactDescription.from_dict({"format": ARTIFACT_FORMAT, **description})


def save_pt2(program: torch.export.ExportedProgram, path: str | os.PathLike,
             description: ArtifactDescription | Mapping[str, Any]) -> Path:
    """Save ``program`` as ``.pt2`` with ``description`` inside (atomically), then the readable JSON copy."""
    path = Path(path)
    description = _as_description(description)
    inputs, outputs = program_io(program)
    check_io(path, description, inputs, outputs)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp, extra_files={PT2_DESCRIPTION: description.to_json()})
    _write_readable_copy(path, description)
    return path


def save_onnx(model: str | os.PathLike | bytes, path: str | os.PathLike,
              description: ArtifactDescription | Mapping[str, Any]) -> Path:
    """Write the ONNX model ``model`` (a file or its bytes) to ``path`` with ``description`` in its
    ``metadata_props`` (atomically), then the readable JSON copy."""
    import onnx  # only where ONNX models are written

    from litquant.artifacts.onnx_file import onnx_io

    path = Path(path)
    description = _as_description(description)
    proto = onnx.load_from_string(model if isinstance(model, bytes) else Path(model).read_bytes())
    kept = [p for p in proto.metadata_props if p.key != ONNX_DESCRIPTION]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=ONNX_DESCRIPTION, value=description.to_json())
    check_io(path, description, *onnx_io(proto))
    write_bytes(path, proto.SerializeToString())
    _write_readable_copy(path, description)
    return path
