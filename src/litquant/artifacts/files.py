"""The artifact file itself: its kind (from the suffix), its bytes (read once, under a size cap), its SHA-256, and
the path of the readable JSON copy beside it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError

__all__ = ["ARTIFACT_SUFFIXES", "MAX_TOTAL_BYTES", "artifact_suffix", "file_sha256", "read_artifact_bytes",
           "sidecar_path"]

#: The kinds of artifact: ``torch.export`` programs and ONNX models.
ARTIFACT_SUFFIXES = (".pt2", ".onnx")
#: Largest artifact file, and largest inflated size of all the entries of a ``.pt2`` together.
MAX_TOTAL_BYTES = 512 * 2**20


def artifact_suffix(path: Path) -> str:
    """``.pt2`` or ``.onnx``; :class:`ArtifactError` for any other suffix."""
    if path.suffix not in ARTIFACT_SUFFIXES:
        raise ArtifactError(f"{path}: unknown artifact type {path.suffix!r}; expected .pt2 or .onnx")
    return path.suffix


def read_artifact_bytes(path: Path) -> bytes:
    """The file's bytes, read once: :class:`ArtifactError` if it is missing, :class:`UnsafeArtifactError` if it is
    larger than :data:`MAX_TOTAL_BYTES`."""
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact; run `litquant quantize` first or check the path")
    size = path.stat().st_size
    if size > MAX_TOTAL_BYTES:
        raise UnsafeArtifactError(f"{path}: refused to load, the file is {size / 2**20:.0f} MiB, more than the "
                                  f"{MAX_TOTAL_BYTES // 2**20} MiB an artifact may have")
    with open(path, "rb") as file:
        return file.read(MAX_TOTAL_BYTES + 1)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(artifact: str | os.PathLike) -> Path:
    """``model.pt2`` → ``model.json``; ``onnxruntime.int8.onnx`` → ``onnxruntime.int8.json``: the readable copy."""
    return Path(artifact).with_suffix(".json")
