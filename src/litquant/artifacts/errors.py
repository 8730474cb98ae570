"""What goes wrong with an artifact file: not an artifact, unsafe to load, or quantized for another CPU."""

from __future__ import annotations

__all__ = ["ArtifactError", "Int8RangeWarning", "UnsafeArtifactError"]


class ArtifactError(ValueError):
    """The file is missing, of an unknown kind, or not a valid artifact."""


class UnsafeArtifactError(ArtifactError):
    """The file holds payloads whose loading could execute code; it was not loaded."""


class Int8RangeWarning(UserWarning):
    """An artifact quantized with full 8-bit ranges for a CPU with VNNI is loaded on a CPU without VNNI."""
