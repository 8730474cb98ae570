"""MNIST and Fashion-MNIST as a ``LightningDataModule`` that keeps every image in memory.

The four canonical IDX ``.gz`` files are read once into ``uint8`` tensors. Batches are sliced from those
tensors directly (no per-sample PIL transforms, no per-sample collation) and normalised per batch, after
they reach the device, in :meth:`MNISTDataModule.on_after_batch_transfer`.

Example::

    from litquant.data import MNISTDataModule
    dm = MNISTDataModule(data_dir="~/data", train_size=1000, batch_size=64)
    dm.prepare_data()          # finds, downloads or falls back (see ``litquant.datasets``)
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))   # uint8 [64, 1, 28, 28], int64 [64]
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetSpec",
    "EpochShuffleSampler",
    "InMemoryImages",
    "MNISTDataModule",
    "default_data_dir",
    "normalize",
    "read_idx",
]


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or inconsistent. The message names the file and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's four IDX files come from, their MD5s, the normalisation constants, and how a picture
    is framed in its 28×28 images (see :func:`litquant.images.to_mnist`)."""

    name: str
    folder: str  # torchvision's folder name: <root>/<folder>/raw/
    files: dict[str, str]  # file name -> md5
    mirrors: tuple[str, ...]
    mean: float
    std: float
    classes: tuple[str, ...]
    framing: str = "digit"  # "digit": 20-px box, centre of mass at the centre; "object": fills the frame


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="MNIST",
        files={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        mean=0.1307,
        std=0.3081,
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        folder="FashionMNIST",
        files={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
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


def default_data_dir() -> Path:
    """The per-user cache folder: ``$LITQUANT_DATA``, else ``$XDG_CACHE_HOME/litquant``, else ``~/.cache``."""
    if env := os.environ.get("LITQUANT_DATA"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "litquant"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (magic 0x0801 labels or 0x0803 images) into a ``uint8`` array."""
    fix = "delete it (or the cache folder) and run again to re-download it"
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err}); {fix}") from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise DataError(f"{path}: wrong magic number, not an IDX uint8 file; {fix}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: holds {len(raw) - header} bytes of data, header says {expected}; {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def normalize(images: torch.Tensor, mean: float = DATASETS["mnist"].mean,
              std: float = DATASETS["mnist"].std) -> torch.Tensor:
    """``uint8`` (or 0..255 float) images to the float input the model expects: ``(x/255 - mean)/std``."""
    return (images.float() / 255.0 - mean) / std


def _passthrough(batch):
    """Collate function for datasets that already return whole batches from ``__getitems__``."""
    return batch


class InMemoryImages(Dataset):
    """Images (``uint8`` ``[N, 28, 28]``) and labels (``int64`` ``[N]``) held in memory.

    ``__getitems__`` slices a whole batch at once, so a ``DataLoader`` with ``collate_fn=_passthrough``
    never builds a batch sample by sample. Samplers (shuffling, ``DistributedSampler``) work unchanged.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels: the files do not belong together")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].unsqueeze(0), self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images[index].unsqueeze(1), self.labels[index]


class EpochShuffleSampler(RandomSampler):
    """A shuffle whose order depends only on ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed from a checkpoint sees exactly the
    order an uninterrupted run would have seen (a plain ``RandomSampler`` restarts its generator's sequence).
    Being a ``RandomSampler``, it is replaced under DDP by Lightning's ``DistributedSampler`` (shuffled by
    seed and epoch, split across processes without overlap).
    """

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(len(self.data_source), generator=generator).tolist())


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image of a ``[B, 1, H, W]`` batch by up to ``max_shift`` pixels (zero padding)."""
    if max_shift <= 0:
        return images
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=generator, device=images.device)
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # [B, H]
    cols = offsets[:, 1, None] + torch.arange(width, device=images.device)  # [B, W]
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    return padded[:, 0][batch_index, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


class MNISTDataModule(L.LightningDataModule):
    """MNIST (or Fashion-MNIST) from the four IDX files, in memory, with a seeded train/val split.

    Args:
        data_dir: folder holding the ``.gz`` files, flat or in torchvision's ``<dir>/MNIST/raw/`` layout.
            Default: the per-user cache (``$LITQUANT_DATA`` or ``~/.cache/litquant``).
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        batch_size: samples per batch for every split.
        val_size: training samples held out for validation (the original tutorial used 5,000).
        train_size: cap on the training samples after the split, for quick runs (``None``: all).
        test_size: cap on the test samples (``None``: all 10,000).
        num_workers: ``DataLoader`` worker processes (0 is fastest for in-memory data).
        seed: seed of the split and of the training shuffle.
        augment_shift: random translation of training images by up to this many pixels (0 turns it off).
        download: allow a download when the files are not found locally.
        mirrors: download mirrors, overriding the defaults and ``$LITQUANT_MIRRORS``.
        allow_fallback: without files and without network, use the small real-MNIST sample that ships in a
            registry package (announced loudly).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        dataset: str = "mnist",
        batch_size: int = 128,
        val_size: int = 5000,
        train_size: int | None = None,
        test_size: int | None = None,
        num_workers: int = 0,
        seed: int = 42,
        augment_shift: int = 2,
        download: bool = True,
        mirrors: list[str] | None = None,
        allow_fallback: bool = True,
    ) -> None:
        super().__init__()
        data_dir = None if data_dir is None else str(data_dir)  # a str, not a Path: checkpoints stay weights-only
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
        self.save_hyperparameters()
        self.spec = DATASETS[dataset]
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.batch_size = batch_size
        self.val_size = val_size
        self.train_size = train_size
        self.test_size = test_size
        self.num_workers = num_workers
        self.seed = seed
        self.augment_shift = augment_shift
        self.download = download
        self.mirrors = mirrors
        self.allow_fallback = allow_fallback
        self.source: str | None = None
        self._arrays: dict[str, np.ndarray] | None = None  # read by prepare_data, consumed by setup
        self._splits: dict[str, InMemoryImages] = {}

    # -- finding the data -------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Make sure the files are present (local folder, then download, then offline fallback)."""
        if not self._splits:
            self._arrays = self._load_arrays()

    def _load_arrays(self) -> dict[str, np.ndarray]:
        from litquant.datasets import locate_dataset

        arrays, self.source = locate_dataset(
            self.spec,
            self.data_dir,
            download=self.download,
            mirrors=self.mirrors,
            allow_fallback=self.allow_fallback,
        )
        return arrays

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        arrays = self._arrays if self._arrays is not None else self._load_arrays()
        self._arrays = None
        train = InMemoryImages(torch.from_numpy(arrays["train_images"].copy()),
                               torch.from_numpy(arrays["train_labels"].astype(np.int64)))
        test = InMemoryImages(torch.from_numpy(arrays["test_images"].copy()),
                              torch.from_numpy(arrays["test_labels"].astype(np.int64)))
        total = len(train)
        val_size = min(self.val_size, total // 10) if total < self.val_size * 2 else self.val_size
        order = torch.randperm(total, generator=torch.Generator().manual_seed(self.seed))
        val_index, train_index = order[:val_size], order[val_size:]
        if self.train_size is not None:
            train_index = train_index[: self.train_size]
        test_index = torch.arange(len(test))[: self.test_size] if self.test_size else torch.arange(len(test))
        self._splits = {
            "train": InMemoryImages(train.images[train_index], train.labels[train_index]),
            "val": InMemoryImages(train.images[val_index], train.labels[val_index]),
            "test": InMemoryImages(test.images[test_index], test.labels[test_index]),
        }

    def split(self, name: str) -> InMemoryImages:
        """The ``train``, ``val`` or ``test`` split (after :meth:`setup`)."""
        if not self._splits:
            self.setup()
        return self._splits[name]

    # -- loaders ----------------------------------------------------------------------------------
    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        dataset = self.split(name)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(dataset, self.seed) if shuffle else None,
            num_workers=self.num_workers,
            collate_fn=_passthrough,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Augment (training only) and normalise the ``uint8`` batch on the device it landed on."""
        if isinstance(batch, torch.Tensor):  # a bare input, e.g. the model's example_input_array
            return self.normalize(batch) if batch.dtype == torch.uint8 else batch
        images, labels = batch
        if self.trainer is not None and self.trainer.training and self.augment_shift:
            images = random_shift(images, self.augment_shift)
        return self.normalize(images), labels

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """This dataset's normalisation, for code that feeds the model outside a Trainer."""
        return normalize(images, self.spec.mean, self.spec.std)

    def state_dict(self) -> dict:
        return {"source": self.source}
