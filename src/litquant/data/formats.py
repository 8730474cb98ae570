"""What a dataset file must hold: the IDX format, the expected shapes and content digests of each dataset.

A file is checked by its *content*: the IDX bytes (after ``gunzip`` for a ``.gz`` file, as they are for an
uncompressed one) must have the expected header and sizes and, where known, the expected SHA-256. So a file
that another tool re-compressed, or unpacked, is accepted, while a truncated, corrupt or foreign one is not.
The bytes that are checked are the bytes that are returned: every file is read once.

A file is read as a stream capped at the size its IDX content can have (known from the dataset, else the
largest file litquant knows): a gzip file that inflates further, or a file larger than any encoding of that
content, is refused once the cap is passed, before more than the cap is held in memory. Only regular files are
read: a folder, a device or a pipe (or a symlink to one) in a data file's place is named as such.

Example::

    from litquant.data.formats import DATASETS, load_idx_file
    images = load_idx_file(DATASETS["mnist"], "train-images-idx3-ubyte", Path("train-images-idx3-ubyte.gz"))
    images.shape                                     # (60000, 28, 28), uint8
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litquant.errors import UserError

__all__ = [
    "DATASETS",
    "SPLIT_FILES",
    "DataError",
    "DatasetSpec",
    "IdxFile",
    "idx_size",
    "load_idx_file",
    "md5sum",
    "not_a_file",
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


class DataError(UserError, RuntimeError):
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

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """``uint8`` (or 0..255) images as the ``float32`` input the model expects: ``(x/255 - mean)/std``, the
        numpy twin of :func:`litquant.data.normalize` (the same roundings)."""
        return (np.asarray(images, dtype=np.float32) / 255.0 - self.mean) / self.std


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


def idx_size(shape: tuple[int, ...]) -> int:
    """The bytes of an uncompressed ``uint8`` IDX file holding an array of ``shape``: header and data."""
    return 4 + 4 * len(shape) + math.prod(shape)


#: The largest IDX file of any known dataset: the cap on a file read without a dataset to say its size.
LARGEST_IDX = max(idx_size(file.shape) for spec in DATASETS.values() for file in spec.files.values())


def _encoded_size_cap(content_cap: int) -> int:
    """The most bytes on disk any gzip (or plain) encoding of ``content_cap`` IDX bytes needs: stored deflate
    blocks add 5 bytes per 64 KiB, each gzip member a header and trailer; 1% and 64 KiB cover any tool."""
    return content_cap + content_cap // 100 + (64 << 10)


_KINDS = ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"))


def not_a_file(path: Path) -> str | None:
    """``None`` for a regular file (or a symlink to one) or a missing path, else what ``path`` is instead:
    ``"a folder"``, ``"a character device"``, ``"a symlink to the character device /dev/zero"``, ..."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "special file")
    return f"a symlink to the {kind} {os.path.realpath(path)}" if Path(path).is_symlink() else f"a {kind}"


def _idx_bytes(path: Path, cap: int) -> bytes:
    """The IDX bytes of ``path``, gunzipped if it is a gzip file (by its magic, not its name), else as is; read
    as a stream and refused as soon as the content passes ``cap`` bytes (a gzip bomb, an endless device) or the
    file is larger than any encoding of ``cap`` bytes, so that at most ``cap`` bytes are ever held."""
    if kind := not_a_file(path):  # never open a device: opening one may block, or act
        raise DataError(f"{path} is {kind}, not a data file; {_FIX}")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    with open(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):  # swapped since the check above
            raise DataError(f"{path} is not a regular file; {_FIX}")
        if info.st_size > _encoded_size_cap(cap):
            raise DataError(f"{path}: {info.st_size:,} bytes, more than any copy of this file ({cap:,} bytes "
                            f"of IDX data, gzipped or not); {_FIX}")
        if handle.peek(2)[:2] != _GZIP_MAGIC:
            data = handle.read(cap + 1)
        else:
            try:
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    data = stream.read(cap + 1)
            except (OSError, EOFError, zlib.error) as err:
                raise DataError(f"{path}: not a readable gzip file ({err}); {_FIX}") from None
    if len(data) > cap:
        raise DataError(f"{path}: holds more than the {cap:,} bytes of IDX data expected (another file, or a "
                        f"corrupt or hostile one), refused before reading further; {_FIX}")
    return data


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
    """Read one IDX file, gzipped or not, into a ``uint8`` array (format checks only; at most the size of the
    largest known dataset file)."""
    return parse_idx(_idx_bytes(path, LARGEST_IDX), path)


def load_idx_file(spec: DatasetSpec, name: str, path: Path) -> np.ndarray:
    """Read ``path`` as ``spec``'s IDX file ``name`` and check its content: shape, and SHA-256 where known."""
    expected = spec.files[name]
    raw = _idx_bytes(path, idx_size(expected.shape))
    array = parse_idx(raw, path)
    if array.shape != expected.shape:
        raise DataError(f"{path}: holds an array of shape {list(array.shape)}, {spec.name}'s {name} has "
                        f"{list(expected.shape)} (a different file?); {_FIX}")
    if expected.sha256 is not None and (actual := hashlib.sha256(raw).hexdigest()) != expected.sha256:
        raise DataError(f"{path}: content differs from {spec.name}'s {name} (SHA-256 of the IDX bytes {actual[:16]}…, "
                        f"expected {expected.sha256[:16]}…), corrupt or another dataset; {_FIX}")
    return array
