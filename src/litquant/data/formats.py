"""What a dataset file must hold: the IDX format, the expected shapes and content digests of each dataset.

A file is checked by its *content*: the IDX bytes (after ``gunzip`` for a ``.gz`` file, as they are for an
uncompressed one) must have the expected header and sizes and, where known, the expected SHA-256. So a file
that another tool re-compressed, or unpacked, is accepted, while a truncated, corrupt or foreign one is not.
The bytes that are checked are the bytes that are returned: every file is read once.

Example::

    from litquant.data.formats import DATASETS, load_idx_file
    images = load_idx_file(DATASETS["mnist"], "train-images-idx3-ubyte", Path("train-images-idx3-ubyte.gz"))
    images.shape                                     # (60000, 28, 28), uint8
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "SPLIT_FILES",
    "DataError",
    "DatasetSpec",
    "IdxFile",
    "load_idx_file",
    "md5sum",
    "parse_idx",
    "read_idx",
]

#: The IDX file behind each array, without the ``.gz`` the mirrors add.
SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "replace it with an intact copy of the original file (.gz or uncompressed IDX)"


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or inconsistent. The message names the file and the fix."""


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset: its array's shape, the SHA-256 of its (uncompressed) IDX bytes where known,
    and the MD5 and size of the canonical ``.gz`` the mirrors serve (downloads are checked against these)."""

    shape: tuple[int, ...]
    archive_md5: str
    archive_size: int
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's four IDX files come from and what they hold, the normalisation constants, and how a
    picture is framed in its 28×28 images (see :func:`litquant.images.to_mnist`)."""

    name: str
    folder: str  # torchvision's folder name: <root>/<folder>/raw/
    files: dict[str, IdxFile]  # IDX name (no .gz) -> what it holds
    mirrors: tuple[str, ...]
    mean: float
    std: float
    classes: tuple[str, ...]
    framing: str = "digit"  # "digit": 20-px box, centre of mass at the centre; "object": fills the frame


def _shapes(train: int, test: int) -> dict[str, tuple[int, ...]]:
    return {"train-images-idx3-ubyte": (train, 28, 28), "train-labels-idx1-ubyte": (train,),
            "t10k-images-idx3-ubyte": (test, 28, 28), "t10k-labels-idx1-ubyte": (test,)}


_MNIST = _shapes(60000, 10000)
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        files={
            "train-images-idx3-ubyte": IdxFile(
                _MNIST["train-images-idx3-ubyte"], "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422,
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            "train-labels-idx1-ubyte": IdxFile(
                _MNIST["train-labels-idx1-ubyte"], "d53e105ee54ea40749a09fcbcd1e9432", 28881,
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            "t10k-images-idx3-ubyte": IdxFile(
                _MNIST["t10k-images-idx3-ubyte"], "9fb629c4189551a2d022fa330f9573f3", 1648877,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            "t10k-labels-idx1-ubyte": IdxFile(
                _MNIST["t10k-labels-idx1-ubyte"], "ec29112dd5afa0611ce80d1b7f02629c", 4542,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        mean=0.1307,
        std=0.3081,
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": DatasetSpec(  # content digests unknown here: header and sizes are checked
        name="fashion-mnist",
        folder="FashionMNIST",
        files={
            "train-images-idx3-ubyte": IdxFile(
                _MNIST["train-images-idx3-ubyte"], "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
            "train-labels-idx1-ubyte": IdxFile(
                _MNIST["train-labels-idx1-ubyte"], "25c81989df183df01b3e8a0aad5dffbe", 29515),
            "t10k-images-idx3-ubyte": IdxFile(
                _MNIST["t10k-images-idx3-ubyte"], "bef4ecab320f06d8554ea6380940ec79", 4422102),
            "t10k-labels-idx1-ubyte": IdxFile(
                _MNIST["t10k-labels-idx1-ubyte"], "bb300cfdad3c16e7a12a480ee83cd310", 5148),
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        mean=0.2860,
        std=0.3530,
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        framing="object",
    ),
}


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _idx_bytes(path: Path) -> bytes:
    """The IDX bytes of ``path``: gunzipped if it is a gzip file (by its magic, not its name), else as is."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err}); {_FIX}") from None


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """IDX bytes (magic ``0x0801`` labels or ``0x0803`` images, ``uint8``) as an array; ``path`` names them in
    errors."""
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise DataError(f"{path}: wrong magic number, not an IDX uint8 file; {_FIX}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: the IDX header is cut short; {_FIX}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: holds {len(raw) - header} bytes of data, header says {expected}; {_FIX}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file, gzipped or not, into a ``uint8`` array (format checks only)."""
    return parse_idx(_idx_bytes(path), path)


def load_idx_file(spec: DatasetSpec, name: str, path: Path) -> np.ndarray:
    """Read ``path`` as ``spec``'s IDX file ``name`` and check its content: shape, and SHA-256 where known."""
    raw = _idx_bytes(path)
    array = parse_idx(raw, path)
    expected = spec.files[name]
    if array.shape != expected.shape:
        raise DataError(f"{path}: holds an array of shape {list(array.shape)}, {spec.name}'s {name} has "
                        f"{list(expected.shape)} (a different file?); {_FIX}")
    if expected.sha256 is not None and (actual := hashlib.sha256(raw).hexdigest()) != expected.sha256:
        raise DataError(f"{path}: content differs from {spec.name}'s {name} (SHA-256 of the IDX bytes {actual[:16]}…, "
                        f"expected {expected.sha256[:16]}…), corrupt or another dataset; {_FIX}")
    return array
