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
from dataclasses import asdict
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from litquant.data.formats import DATASETS, DataError
from litquant.data.settings import DataSettings

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

    Takes the fields of :class:`~litquant.data.settings.DataSettings` as keyword arguments (the ``--data.*``
    options; LightningCLI reads them from there), kept as :attr:`settings` and saved as its hyper-parameters.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = DataSettings(**settings)
        self.save_hyperparameters(asdict(self.settings))
        self.spec = self.settings.spec
        self.data_dir_given = bool(self.settings.data_dir)
        self.data_dir = self.settings.folder
        self.batch_size = self.settings.batch_size
        self.val_size = self.settings.val_size
        self.train_size = self.settings.train_size
        self.test_size = self.settings.test_size
        self.num_workers = self.settings.num_workers
        self.seed = self.settings.seed
        self.augment_shift = self.settings.augment_shift
        self.download = self.settings.download
        self.mirrors = self.settings.mirrors
        self.allow_fallback = self.settings.allow_fallback
        self.source: str | None = None
        self._arrays: dict[str, np.ndarray] | None = None  # read by prepare_data, consumed by setup
        self._splits: dict[str, InMemoryImages] = {}

    # -- finding the data -------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Make sure the files are present (local folder, then download, then offline fallback)."""
        if not self._splits:
            self._arrays = self._load_arrays()

    def _load_arrays(self) -> dict[str, np.ndarray]:
        arrays, self.source = self.settings.load_arrays()
        return arrays

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        arrays = self._arrays if self._arrays is not None else self._load_arrays()
        self._arrays = None
        train = InMemoryImages(torch.from_numpy(arrays["train_images"].copy()),
                               torch.from_numpy(arrays["train_labels"].astype(np.int64)))
        test_images, test_labels = self.settings.test_split(arrays)
        test = InMemoryImages(torch.from_numpy(test_images.copy()), torch.from_numpy(test_labels))
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
        self._splits = {
            "train": InMemoryImages(train.images[train_index], train.labels[train_index]),
            "val": InMemoryImages(train.images[val_index], train.labels[val_index]),
            "test": test,
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
