"""Shared fixtures: the real MNIST files, an isolated data cache, and a small data module factory.

Under pytest-xdist (``make test`` runs two workers) each worker, and every process a test starts, uses one
thread, so that the workers share the cores instead of contending for them.

Every test runs with ``$LITQUANT_DATA`` pointing to its own empty folder and ``$LITQUANT_MIRRORS`` pointing
to a closed port on 127.0.0.1, so no test touches the user's cache or the network by accident (a test that
needs the standard mirrors must ``monkeypatch.delenv("LITQUANT_MIRRORS")``). Subprocesses inherit both.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from litquant.data import MNISTDataModule

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT/`` for a port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding ``MNIST/raw/`` with the four real .gz files: ``$LITQUANT_TEST_DATA``, else
    ``shared/data`` beside the repository."""
    beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("LITQUANT_TEST_DATA") or beside_repo)
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not in {root}/MNIST/raw/: set LITQUANT_TEST_DATA to the folder that holds MNIST/")
    return root


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty per-test ``$LITQUANT_DATA`` cache, and downloads that fail fast (closed local port)."""
    cache = tmp_path_factory.mktemp("litquant-cache")
    monkeypatch.setenv("LITQUANT_DATA", str(cache))
    monkeypatch.setenv("LITQUANT_MIRRORS", closed_port_url())
    return cache


@pytest.fixture
def unreachable_mirror() -> str:
    """A mirror URL on 127.0.0.1 that refuses every connection (no network, without waiting)."""
    return closed_port_url()


@pytest.fixture
def make_datamodule(mnist_dir: Path) -> Callable[..., MNISTDataModule]:
    """Factory of small real-MNIST data modules: ``make_datamodule(train_size=256, batch_size=32)``.

    Defaults: 512 train / 256 val / 256 test samples, batch 64, no augmentation; any argument overrides.
    """

    def make(**kwargs) -> MNISTDataModule:
        options = dict(data_dir=str(mnist_dir), train_size=512, val_size=256, test_size=256, batch_size=64,
                       augment_shift=0)
        options.update(kwargs)
        return MNISTDataModule(**options)

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """One small fp32 checkpoint for the whole session (see ``quantization_helpers.train_tiny_checkpoint``)."""
    from quantization_helpers import train_tiny_checkpoint

    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny-checkpoint"), mnist_dir)


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path,
                   mnist_dir: Path) -> dict[str, Path]:
    """The fp32 and every method's int8 artifact of :func:`tiny_checkpoint`, made once for the session."""
    from quantization_helpers import make_artifacts

    return make_artifacts(tiny_checkpoint, tmp_path_factory.mktemp("tiny-artifacts"), mnist_dir)
