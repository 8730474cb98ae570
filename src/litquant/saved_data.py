"""The data a checkpoint or an artifact was made with (:mod:`litquant.data.settings`), read from its file.

Example::

    from litquant.saved_data import saved_data_settings
    saved_data_settings("demo/ptq.pt2")   # {"dataset": "mnist", "data_dir": None, "val_size": 5000, ...}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from litquant.data.settings import parse_data_settings

#: File suffixes of the models whose data settings :func:`saved_data_settings` reads.
CHECKPOINT_SUFFIX = ".ckpt"
ARTIFACT_SUFFIXES = (".pt2", ".onnx")


def carries_data_settings(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a file of a kind that carries data settings (a checkpoint or an artifact)."""
    return bool(path) and Path(path).suffix in (CHECKPOINT_SUFFIX, *ARTIFACT_SUFFIXES) and Path(path).is_file()


def model_kind(path: str | os.PathLike) -> str:
    """``checkpoint`` or ``artifact``, as messages name ``path``."""
    return "checkpoint" if Path(path).suffix == CHECKPOINT_SUFFIX else "artifact"


def saved_data_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The data settings saved in a checkpoint (its data module's hyper-parameters) or an artifact (its
    description's ``data``), parsed; ``{}`` for a file that saved none."""
    if model_kind(path) == "checkpoint":
        from litquant.data import data_settings_from_checkpoint

        return parse_data_settings(data_settings_from_checkpoint(path))
    from litquant.artifacts.loading import read_description

    return dict(read_description(path).data or {})
