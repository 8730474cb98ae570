"""``litquant describe ARTIFACT``: the description embedded in an artifact, for a person or (``--format json``)
a program; and the one-line accuracy summary ``litquant quantize`` prints.

Example::

    $ litquant describe demo/ptq.pt2
    $ litquant describe demo/ptq.pt2 --format json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from litquant.artifacts.description import ArtifactDescription
from litquant.artifacts.loading import read_description


def _mb(path: str | os.PathLike) -> str:
    return f"{Path(path).stat().st_size / 1e6:.2f} MB"


def _scores(description: ArtifactDescription) -> tuple[str, str] | None:
    """(``int8 0.9180, fp32 0.9170``, ``1,024 validation images``) of what the artifact measured when it was
    written; ``None`` when it measured nothing."""
    accuracy = description.accuracy or {}
    scores = [(name, accuracy[name]) for name in ("int8", "fp32") if isinstance(accuracy.get(name), (int, float))]
    if not scores:
        return None
    split = {"val": "validation", "test": "test"}.get(str(accuracy.get("split")), "")
    samples = accuracy.get("samples")
    images = f"{samples:,} {split} images".replace("  ", " ") if isinstance(samples, int) else f"{split} images"
    return ", ".join(f"{name} {value:.4f}" for name, value in scores), images.strip()


def accuracy_line(description: ArtifactDescription) -> str | None:
    """``accuracy int8 0.9180, fp32 0.9170 on 1,024 validation images``, from what the artifact measured when it
    was written; ``None`` when it measured nothing."""
    scores = _scores(description)
    return None if scores is None else f"accuracy {scores[0]} on {scores[1]}"


def _shape(shape: tuple[str | int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _data_line(data: dict[str, Any]) -> str:
    sizes = ", ".join(f"{key} {data[key]}" for key in ("train_size", "val_size", "test_size", "seed")
                      if data.get(key) is not None)
    where = data.get("data_dir") or "the default data folder ($LITQUANT_DATA or ~/.cache/litquant)"
    return f"{data.get('dataset', 'mnist')} from {where}" + (f" ({sizes})" if sizes else "")


def format_description(path: str | os.PathLike, description: ArtifactDescription) -> str:
    """The description as a few aligned lines: what the model is, where it came from, what it takes and gives,
    its accuracy, data and size; then every entry its method added, as compact JSON."""
    spec = description.input
    norm = spec.normalization or {}
    rows = [("model", f"{description.method} ({description.precision}), {_mb(path)}"),
            ("created", description.created),
            ("checkpoint", f"{description.checkpoint} (sha256 {description.checkpoint_sha256})"
             if description.checkpoint else "none recorded"),
            ("input", f"{', '.join(spec.names)} {_shape(spec.shape)} {spec.dtype}, {spec.dataset or 'images'}"
             + (f", normalised as (pixel / 255 - {norm['mean']}) / {norm['std']}" if norm else "")),
            ("output", f"{description.output.name} {_shape(description.output.shape)}"
             + (f": {', '.join(spec.classes)}" if spec.classes else "")),
            ("accuracy", (accuracy_line(description) or "accuracy not measured").removeprefix("accuracy ")),
            ("data", _data_line(description.data) if description.data else "not recorded"),
            ("versions", ", ".join(f"{name} {version}" for name, version in description.versions.items()))]
    rows += [(key, json.dumps(value, separators=(", ", ": "))) for key, value in description.extra.items()]
    width = max(len(key) for key, _ in rows)
    return f"{path}\n" + "\n".join(f"  {key:<{width}}  {value}" for key, value in rows)


def quantized_summary(path: str | os.PathLike) -> str:
    """What ``litquant quantize`` says of the artifact it wrote: ``runs/q/ptq.pt2: 1.27 MB, accuracy int8 0.9180,
    fp32 0.9170 on 1,024 validation images`` (``litquant describe`` shows the rest)."""
    line = accuracy_line(read_description(path))
    return f"{path}: {_mb(path)}" + (f", {line}" if line else "") + f" (litquant describe {path} for the rest)"
