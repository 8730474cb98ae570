"""MNIST and Fashion-MNIST as a ``LightningDataModule`` that keeps every image in memory.

The four IDX files are read once into ``uint8`` tensors. Batches are sliced from those
tensors directly (no per-sample PIL transforms, no per-sample collation) and normalised per batch, after
they reach the device, in :meth:`MNISTDataModule.on_after_batch_transfer`.

Example::

    from litquant.data import MNISTDataModule
    dm = MNISTDataModule(data_dir="~/data", train_size=1000, batch_size=64)
    dm.prepare_data()          # finds, downloads or falls back (see ``litquant.data.sources``)
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))   # uint8 [64, 1, 28, 28], int64 [64]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence, Sized
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from litquant.data.formats import DATASETS, DataError
from litquant.data.sources import default_data_dir, locate_dataset

__all__ = [
    "EpochShuffleSampler",
    "InMemoryImages",
    "MNISTDataModule",
    "data_settings_from_checkpoint",
    "normalize",
    "random_shift",
]


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
        mirrors: str | list[str] | None = None,
        allow_fallback: bool = True,
    ) -> None:
        super().__init__()
        data_dir = None if data_dir is None else str(data_dir)  # a str, not a Path: checkpoints stay weights-only
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
        self.save_hyperparameters()
        self.spec = DATASETS[dataset]
        self.data_dir_given = bool(data_dir)
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
        if self.data_dir_given and not self.data_dir.is_dir():
            what = "is not a folder" if self.data_dir.exists() else "does not exist"
            raise DataError(f"--data.data_dir {self.data_dir} {what}: pass the folder that holds the "
                            f"{self.spec.name} files (or leave the option out to use the cache)")
        arrays, self.source = locate_dataset(
            self.spec,
            self.data_dir,
            download=self.download,
            mirrors=self.mirrors,
            allow_fallback=self.allow_fallback and not self.data_dir_given,
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
            if self.train_size > len(train_index):
                print(f"litquant: --data.train_size {self.train_size:,} asks for more than the {len(train_index):,} "
                      f"training images available ({self.source}); using {len(train_index):,}",
                      file=sys.stderr, flush=True)
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

    def normalized_batches(self, split: str = "test", batch_size: int | None = None, limit: int | None = None,
                           shuffle: bool = False, seed: int | None = None,
                           device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(float images [B,1,28,28], labels [B])`` of a split, normalised as the model expects, outside a
        Trainer: in order (or shuffled with ``seed``, default this module's), at most ``limit`` batches."""
        data = self.split(split)
        size = batch_size or self.batch_size
        count = len(data)
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed)
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        for index, start in enumerate(range(0, count, size)):
            if limit is not None and index >= limit:
                return
            images, labels = data.__getitems__(order[start:start + size].tolist())
            yield self.normalize(images.to(device)), labels.to(device)

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


def data_settings_from_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The data module's settings saved in a Lightning checkpoint (``datamodule_hyper_parameters``: dataset,
    data_dir, split sizes, seed, ...), read with the safe loader; ``{}`` for a checkpoint without them."""
    from collections.abc import Mapping

    from litquant.checkpoints import CheckpointError, load_checkpoint

    settings = load_checkpoint(path).get("datamodule_hyper_parameters") or {}
    if not isinstance(settings, Mapping):
        raise CheckpointError(f"{path}: its data settings are not a mapping; pass the --data options yourself")
    return dict(settings)
