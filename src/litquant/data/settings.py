"""The data settings: :class:`DataSettings`, every option of the data (the ``--data.*`` options, the arguments of
:class:`~litquant.data.MNISTDataModule`), and those a trained model carries with it: which data (dataset, folder,
split sizes, seed), so that the commands that load a checkpoint or an artifact use the data it was made with.

How to fetch the data (``num_workers``, ``download``, ``mirrors``, ``allow_fallback``) is never carried: it
stays this machine's. What is read back from a file is rebuilt from parsed values of the expected types only.
numpy only: the commands that need no Lightning data module (``predict`` of image files, ``evaluate`` of an
``.onnx``) read their ``--data.*`` options from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litquant.data.formats import DATASETS, DataError, DatasetSpec
from litquant.data.sources import default_data_dir, locate_dataset


@dataclass(frozen=True)
class DataSettings:
    """MNIST (or Fashion-MNIST) from the four IDX files, in memory, with a seeded train/val split.

    The data options (``--data.*``): which data, split how, fetched how; the arguments of
    :class:`~litquant.data.MNISTDataModule`.

    Args:
        data_dir: folder holding the four IDX files (``.gz`` or uncompressed), flat or in torchvision's
            ``<dir>/MNIST/raw/`` layout; it must exist. Default: the per-user cache (``$LITQUANT_DATA`` or
            ``~/.cache/litquant``), the only case where the offline fallback may step in.
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        batch_size: samples per batch for every split.
        val_size: training samples held out for validation (the original tutorial used 5,000).
        train_size: cap on the training samples after the split, for quick runs (``None``: all).
        test_size: cap on the test samples (``None``: all 10,000).
        num_workers: ``DataLoader`` worker processes (0 is fastest for in-memory data).
        seed: seed of the split and of the training shuffle.
        augment_shift: random translation of training images by up to this many pixels (0 turns it off).
        download: allow a download when the files are not found locally.
        mirrors: download mirrors (base URLs; one string may list several, comma-separated), overriding the
            defaults and ``$LITQUANT_MIRRORS``.
        allow_fallback: without ``data_dir``, files and network, use the small real-MNIST sample that ships in
            a registry package (announced loudly). A ``data_dir`` that was given never falls back.

    Raises:
        ValueError: an unknown ``dataset``.
    """

    data_dir: str | None = None
    dataset: str = "mnist"
    batch_size: int = 128
    val_size: int = 5000
    train_size: int | None = None
    test_size: int | None = None
    num_workers: int = 0
    seed: int = 42
    augment_shift: int = 2
    download: bool = True
    mirrors: str | list[str] | None = None
    allow_fallback: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        if self.data_dir is not None:  # a str, not a Path: checkpoints stay weights-only
            object.__setattr__(self, "data_dir", str(self.data_dir))

    @property
    def spec(self) -> DatasetSpec:
        """What the dataset's files hold, its normalisation and framing."""
        return DATASETS[self.dataset]

    @property
    def folder(self) -> Path:
        """``data_dir`` expanded, or the default data folder."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def load_arrays(self) -> tuple[dict[str, np.ndarray], str]:
        """The four arrays and where they came from: the local folder, then a download, then the offline
        fallback (:func:`~litquant.data.sources.locate_dataset`).

        Raises:
            DataError: a ``data_dir`` given that is not a folder, or data that cannot be found or is corrupt."""
        folder = self.folder
        if self.data_dir and not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise DataError(f"--data.data_dir {folder} {what}: pass the folder that holds the "
                            f"{self.spec.name} files (or leave the option out to use the cache)")
        return locate_dataset(self.spec, folder, download=self.download, mirrors=self.mirrors,
                              allow_fallback=self.allow_fallback and not self.data_dir)

    def test_split(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The test images (``uint8`` ``[N, 28, 28]``) and labels (``int64`` ``[N]``) of ``arrays``: the first
        ``test_size`` (all without it)."""
        count = self.test_size or len(arrays["test_labels"])
        return arrays["test_images"][:count], arrays["test_labels"][:count].astype(np.int64)

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
