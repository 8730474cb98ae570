"""The data settings a trained model carries with it: which data (dataset, folder, split sizes, seed), so that
the commands that load a checkpoint or an artifact use the data it was made with.

How to fetch the data (``num_workers``, ``download``, ``mirrors``, ``allow_fallback``) is never carried: it
stays this machine's. What is read back from a file is rebuilt from parsed values of the expected types only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litquant.data.formats import DATASETS, DataError

#: The settings a checkpoint or an artifact passes on to the commands that load it, in this order.
SAVED_DATA_KEYS = ("dataset", "data_dir", "val_size", "train_size", "test_size", "seed", "batch_size",
                   "augment_shift")

_OPTIONAL_SIZES = ("train_size", "test_size")  # None: all
_COUNTS = ("val_size", "seed", "batch_size", "augment_shift")


def _count(value: Any, key: str, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"saved data setting {key!r} is {value!r}, not a whole number >= 0")
    return int(value)


def parse_data_settings(raw: Any) -> dict[str, Any]:
    """The saved data settings in ``raw`` (a mapping, e.g. read from a file), parsed: only
    :data:`SAVED_DATA_KEYS`, each of its expected type (other keys are left out); a wrong type is a
    :class:`DataError`."""
    if not isinstance(raw, Mapping):
        raise DataError("the saved data settings are not a mapping")
    settings: dict[str, Any] = {}
    if "dataset" in raw:
        if raw["dataset"] not in DATASETS:
            raise DataError(f"saved dataset {raw['dataset']!r} is not one of {', '.join(DATASETS)}")
        settings["dataset"] = str(raw["dataset"])
    if "data_dir" in raw:
        if raw["data_dir"] is not None and not isinstance(raw["data_dir"], str):
            raise DataError(f"saved data_dir {raw['data_dir']!r} is not a path")
        settings["data_dir"] = None if raw["data_dir"] is None else str(raw["data_dir"])
    for key in SAVED_DATA_KEYS:
        if key in raw and (key in _OPTIONAL_SIZES or key in _COUNTS):
            settings[key] = _count(raw[key], key, optional=key in _OPTIONAL_SIZES)
    return {key: settings[key] for key in SAVED_DATA_KEYS if key in settings}


def data_settings(datamodule: Any) -> dict[str, Any]:
    """The :data:`SAVED_DATA_KEYS` of ``datamodule``'s constructor arguments (``data_dir`` as given: ``None``
    for the default folder), to save with a model made from it."""
    return parse_data_settings({key: value for key, value in dict(datamodule.hparams).items()
                                if key in SAVED_DATA_KEYS})
