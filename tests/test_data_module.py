"""The in-memory MNIST data module: seeded split, shuffling, batch format, augmentation, fallback."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from litquant.data import DATASETS, MNISTDataModule, random_shift
from litquant.data.sources import locate_dataset


def rows(images: torch.Tensor) -> Counter:
    return Counter(image.numpy().tobytes() for image in images)


def test_split_is_seeded_and_train_val_partition_the_training_files(make_datamodule) -> None:
    dm = make_datamodule(train_size=None, val_size=5000)
    dm.setup("fit")
    train, val = dm.split("train"), dm.split("val")
    assert (len(train), len(val), len(dm.split("test"))) == (55000, 5000, 256)
    assert dm.source is not None and dm.source.startswith("local folder")
    same = make_datamodule(train_size=None, val_size=5000)
    same.setup("fit")
    assert torch.equal(same.split("val").labels, val.labels) and torch.equal(same.split("val").images, val.images)
    other = make_datamodule(train_size=None, val_size=5000, seed=7)
    other.setup("fit")
    assert not torch.equal(other.split("val").images, val.images)
    # no image is in both splits and none is lost: train + val is exactly the training file, as a multiset
    arrays, _ = locate_dataset(DATASETS["mnist"], dm.data_dir)
    assert rows(train.images) + rows(val.images) == rows(torch.from_numpy(arrays["train_images"].copy()))


def test_train_size_caps_the_training_split_only(make_datamodule) -> None:
    dm = make_datamodule(train_size=300, val_size=200, test_size=100)
    dm.setup("fit")
    assert (len(dm.split("train")), len(dm.split("val")), len(dm.split("test"))) == (300, 200, 100)


def test_batches_are_uint8_images_and_int64_labels(make_datamodule) -> None:
    dm = make_datamodule(batch_size=32)
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        images, labels = next(iter(loader))
        assert images.dtype == torch.uint8 and images.shape == (32, 1, 28, 28)
        assert labels.dtype == torch.int64 and labels.shape == (32,)
    val_labels = torch.cat([labels for _, labels in dm.val_dataloader()])
    assert torch.equal(val_labels, dm.split("val").labels)  # evaluation order is fixed


def test_train_loader_shuffles_every_epoch(make_datamodule) -> None:
    dm = make_datamodule(batch_size=64)
    dm.setup("fit")
    loader = dm.train_dataloader()
    first = torch.cat([labels for _, labels in loader])
    split = dm.split("train").labels
    assert not torch.equal(first, split)
    assert torch.equal(first.sort().values, split.sort().values)  # a permutation: every sample once
    loader.sampler.set_epoch(1)  # as the Trainer does before each epoch
    second = torch.cat([labels for _, labels in loader])
    assert not torch.equal(first, second)
    assert torch.equal(torch.cat([labels for _, labels in dm.train_dataloader()]), first)  # seeded


def test_random_shift_keeps_shapes_and_moves_pixels(make_datamodule) -> None:
    dm = make_datamodule(batch_size=16)
    dm.setup("fit")
    images, _ = next(iter(dm.train_dataloader()))
    shifted = random_shift(images, 2, generator=torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    assert not torch.equal(shifted, images)
    assert (shifted.flatten(1).sum(1) <= images.flatten(1).sum(1)).all()  # zero padding adds no ink
    assert torch.equal(random_shift(images, 0), images)


def test_batches_are_normalised_on_transfer(make_datamodule) -> None:
    dm = make_datamodule(batch_size=256, augment_shift=2)
    dm.setup("fit")
    images, labels = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert images.dtype == torch.float32 and images.shape == (256, 1, 28, 28) and labels.dtype == torch.int64
    assert abs(images.mean().item()) < 0.2 and abs(images.std().item() - 1) < 0.2
    assert torch.equal(dm.on_after_batch_transfer(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), 0),
                       dm.normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8)))


def test_offline_fallback_through_the_datamodule(unreachable_mirror: str, capfd) -> None:
    dm = MNISTDataModule(mirrors=[unreachable_mirror], batch_size=100)  # no data_dir: the (empty) cache
    dm.prepare_data()
    dm.setup("fit")
    assert "4,000 train / 1,000 test" in dm.source
    assert (len(dm.split("train")), len(dm.split("val")), len(dm.split("test"))) == (3600, 400, 1000)
    assert capfd.readouterr().err.count("OFFLINE FALLBACK") == 1  # prepare_data + setup: announced once
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (100, 1, 28, 28)


def test_default_data_dir_is_the_isolated_cache(data_cache: Path) -> None:
    assert MNISTDataModule().data_dir == data_cache


def test_unknown_dataset_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        MNISTDataModule(dataset="cifar")

