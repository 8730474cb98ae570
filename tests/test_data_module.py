"""The in-memory MNIST data module: seeded split, shuffling, batch format, augmentation, fallback."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from litquant.data import DATASETS, DataError, MNISTDataModule, random_shift
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



def test_normalized_batches_of_a_split(make_datamodule) -> None:
    dm = make_datamodule(test_size=100)
    batches = list(dm.normalized_batches("test", batch_size=32))
    assert [len(labels) for _, labels in batches] == [32, 32, 32, 4]
    images, labels = batches[0]
    assert images.dtype == torch.float32 and images.shape == (32, 1, 28, 28)
    torch.testing.assert_close(images, dm.normalize(dm.split("test").images[:32].unsqueeze(1)))
    assert labels.tolist() == dm.split("test").labels[:32].tolist()
    assert len(list(dm.normalized_batches("test", batch_size=32, limit=2))) == 2
    shuffled = torch.cat([y for _, y in dm.normalized_batches("test", shuffle=True, seed=1)])
    assert sorted(shuffled.tolist()) == sorted(dm.split("test").labels.tolist()) and not torch.equal(
        shuffled, dm.split("test").labels)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_data_dir_that_is_not_a_folder_is_an_error(kind: str, tmp_path: Path, unreachable_mirror: str, capfd) -> None:
    path = tmp_path / "nowhere" / "data"
    if kind == "file":
        path = tmp_path / "data.txt"
        path.write_text("not a folder")
    dm = MNISTDataModule(data_dir=str(path), mirrors=[unreachable_mirror])
    with pytest.raises(DataError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"--data.data_dir {path} ")
    assert ("does not exist" if kind == "missing" else "is not a folder") in message
    assert not (tmp_path / "nowhere").exists()  # no folders created
    assert "OFFLINE FALLBACK" not in capfd.readouterr().err


def test_a_given_empty_data_dir_never_falls_back(tmp_path: Path, unreachable_mirror: str, capfd) -> None:
    dm = MNISTDataModule(data_dir=str(tmp_path), mirrors=[unreachable_mirror])
    with pytest.raises(DataError, match="Connection refused"):
        dm.prepare_data()
    assert "OFFLINE FALLBACK" not in capfd.readouterr().err


def test_train_size_beyond_the_fallback_says_so(unreachable_mirror: str, capfd) -> None:
    dm = MNISTDataModule(mirrors=[unreachable_mirror], train_size=5000)
    dm.setup("fit")
    assert len(dm.split("train")) == 3600
    err = capfd.readouterr().err
    assert "--data.train_size 5,000 asks for more than the 3,600 training images available (offline fallback" in err


def test_mirrors_option_as_readme_writes_it(tmp_path: Path, mnist_dir: Path, unreachable_mirror: str) -> None:
    """``--data.mirrors URL`` (and a comma-separated list) through the real CLI parser, then a real download."""
    from test_data_sources import GZ_FILES, Mirror

    from litquant.cli.lightning import LitquantCLI

    mirror = Mirror({name: (mnist_dir / "MNIST" / "raw" / name).read_bytes() for name in GZ_FILES})
    try:
        for value in (mirror.url, f"{unreachable_mirror},{mirror.url}"):
            cli = LitquantCLI(args=["--data.mirrors", value, "--trainer.default_root_dir", str(tmp_path),
                                    "--trainer.logger", "false"], run=False)
            assert cli.datamodule.mirrors == value
        cli.datamodule.prepare_data()
        assert cli.datamodule.source.startswith(f"downloaded from {mirror.url}")
    finally:
        mirror.close()


def test_checkpoint_remembers_its_data_settings(make_datamodule, tmp_path: Path) -> None:
    import lightning.pytorch as L

    from litquant.data import data_settings_from_checkpoint
    from litquant.model import MNISTClassifier

    dm = make_datamodule(train_size=128, val_size=64, test_size=64, seed=7)
    trainer = L.Trainer(max_steps=1, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, accelerator="cpu", devices=1)
    trainer.fit(MNISTClassifier(), datamodule=dm)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    settings = data_settings_from_checkpoint(tmp_path / "model.ckpt")
    assert settings == dict(dm.hparams)
    assert (settings["data_dir"], settings["train_size"], settings["seed"]) == (dm.hparams.data_dir, 128, 7)
    assert MNISTDataModule(**settings).hparams == dm.hparams  # enough to rebuild the same data


class Payload:
    """Any class: a checkpoint that names it must be refused before anything of it runs."""


def test_data_settings_are_read_safely(tmp_path: Path) -> None:
    from litquant.checkpoints import CheckpointError, UnsafeCheckpointError
    from litquant.data import data_settings_from_checkpoint

    path = tmp_path / "hostile.ckpt"
    torch.save({"datamodule_hyper_parameters": Payload(), "state_dict": {}}, path)  # a class, not plain data
    with pytest.raises(UnsafeCheckpointError):
        data_settings_from_checkpoint(path)
    torch.save({"datamodule_hyper_parameters": [1, 2], "state_dict": {}}, tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError, match="odd.ckpt: its data settings are not a mapping"):
        data_settings_from_checkpoint(tmp_path / "odd.ckpt")
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6.6"}, tmp_path / "plain.ckpt")
    assert data_settings_from_checkpoint(tmp_path / "plain.ckpt") == {}


def test_the_settings_are_the_modules_arguments_and_give_its_test_split_without_torch(mnist_dir: Path) -> None:
    from dataclasses import asdict

    from litquant.data import DataSettings

    settings = DataSettings(data_dir=str(mnist_dir), test_size=300, download=False)
    dm = MNISTDataModule(**asdict(settings))
    assert dm.settings == settings and dict(dm.hparams) == asdict(settings)
    images, labels = settings.test_split(settings.load_arrays()[0])
    assert type(images).__module__ == "numpy" and images.shape == (300, 28, 28)
    assert torch.equal(torch.from_numpy(images.copy()), dm.split("test").images)
    assert torch.equal(torch.from_numpy(labels), dm.split("test").labels)
