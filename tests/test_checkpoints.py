"""Safe checkpoint loading: real checkpoints load, crafted pickles are refused without running anything."""

from __future__ import annotations

import pickle
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from torch import nn

from litquant.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_classifier,
    safe_globals,
)
from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier


def tiny_trainer(root: Path, **kwargs) -> L.Trainer:
    return L.Trainer(max_epochs=1, default_root_dir=root, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, **kwargs)


@pytest.fixture(scope="module")
def checkpoint(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of a tiny fit (the data module gets a ``Path``, as Python callers often pass)."""
    root = tmp_path_factory.mktemp("fit")
    datamodule = MNISTDataModule(data_dir=mnist_dir, train_size=256, val_size=128, test_size=128, batch_size=64)
    trainer = tiny_trainer(root)
    trainer.fit(MNISTClassifier(), datamodule=datamodule)
    return Path(trainer.checkpoint_callback.best_model_path)


class RunsCode:
    """Unpickling this object runs ``exec`` on code that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_real_checkpoint_needs_nothing_beyond_plain_tensors_and_containers(checkpoint: Path) -> None:
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint)) == []
    loaded = load_checkpoint(checkpoint)
    assert {"state_dict", "hyper_parameters", "optimizer_states", "lr_schedulers", "loops", "callbacks",
            "datamodule_hyper_parameters"} <= set(loaded)
    assert isinstance(loaded["datamodule_hyper_parameters"]["data_dir"], str)  # not a Path
    torch.load(checkpoint, weights_only=True)  # plain PyTorch accepts it too


def test_load_classifier_restores_weights_and_hyper_parameters(checkpoint: Path) -> None:
    model = load_classifier(checkpoint)
    assert isinstance(model, MNISTClassifier) and model.hparams.lr == MNISTClassifier().hparams.lr
    weights = load_checkpoint(checkpoint)["state_dict"]
    assert all(torch.equal(value, weights[key]) for key, value in model.state_dict().items())


def test_lightning_test_with_ckpt_path_loads_weights_only(checkpoint: Path, make_datamodule, tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    datamodule = make_datamodule(test_size=128)
    (result,) = trainer.test(MNISTClassifier(), datamodule=datamodule, ckpt_path=str(checkpoint),
                             weights_only=True, verbose=False)
    assert 0.0 <= result["test_acc"] <= 1.0


@pytest.mark.parametrize("form", ["torch.save", "pickle protocol 2", "pickle protocol 5"])
def test_crafted_pickle_is_refused_and_runs_nothing(form: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    payload = {"state_dict": {"model.conv1.weight": RunsCode(marker)}}
    pickle.loads(pickle.dumps(payload))  # the payload is live: plain unpickling runs it
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.ckpt"
    if form == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(form[-1])))
    for load in (load_checkpoint, load_classifier):
        with pytest.raises(UnsafeCheckpointError) as error:
            load(path)
        message = one_line(error)
        assert message.startswith(f"refused to load {path}") and "nothing from the file was executed" in message
    assert not marker.exists()
    assert "hold" in message and "code" in message and "weights_only" not in message
    if form == "torch.save":
        assert "it holds code (it asks to import exec" in message


def test_lightning_default_also_refuses_a_crafted_checkpoint(tmp_path: Path, make_datamodule) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": RunsCode(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):  # weights_only=None: PyTorch's default, True since 2.6
        tiny_trainer(tmp_path).test(MNISTClassifier(), datamodule=make_datamodule(test_size=64),
                                    ckpt_path=str(path), verbose=False)
    assert not marker.exists()


def test_path_objects_in_old_checkpoints_are_allow_listed(checkpoint: Path, tmp_path: Path) -> None:
    loaded = torch.load(checkpoint, weights_only=True)
    loaded["datamodule_hyper_parameters"]["data_dir"] = Path("/data/mnist")
    path = tmp_path / "with_path.ckpt"
    torch.save(loaded, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # plain PyTorch refuses a Path
    assert load_checkpoint(path)["datamodule_hyper_parameters"]["data_dir"] == Path("/data/mnist")
    assert isinstance(load_classifier(path), MNISTClassifier)
    with safe_globals():
        MNISTClassifier.load_from_checkpoint(path, weights_only=True)


def save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_missing_empty_and_non_checkpoint_files(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.ckpt": "not found",
        tmp_path: "is a folder",
        tmp_path / "empty.ckpt": "is not a PyTorch checkpoint",
        tmp_path / "notes.txt": "is not a PyTorch checkpoint",
        tmp_path / "digit.ckpt": "is not a PyTorch checkpoint (it does not begin as a file torch.save writes)",
        save(tmp_path / "tensor.pt", torch.zeros(3)): "is not a Lightning checkpoint (no 'state_dict' entry)",
        save(tmp_path / "weights.pt", nn.Linear(2, 2).state_dict()): "no 'state_dict' entry",
    }
    (tmp_path / "empty.ckpt").touch()
    (tmp_path / "notes.txt").write_text("hello, not a checkpoint\n")
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "digit.ckpt", format="PNG")  # a picture renamed .ckpt
    for path, expected in cases.items():
        with pytest.raises(CheckpointError) as error:
            load_classifier(path)
        message = one_line(error)
        assert str(path) in message and expected in message, message
        assert not isinstance(error.value, UnsafeCheckpointError)


def test_checkpoint_of_another_model(checkpoint: Path, tmp_path: Path) -> None:
    other = {"state_dict": {f"net.{k}": v for k, v in nn.Linear(4, 2).state_dict().items()},
             "hyper_parameters": {"hidden": 4}}
    with pytest.raises(CheckpointError) as error:
        load_classifier(save(tmp_path / "other.ckpt", other))
    message = one_line(error)
    assert "checkpoint of another model, not MNISTClassifier" in message and "2 unexpected (e.g. net.bias)" in message
    load_checkpoint(tmp_path / "other.ckpt")  # a valid checkpoint, just not ours
    reshaped = torch.load(checkpoint, weights_only=True)
    reshaped["state_dict"]["model.fc2.weight"] = torch.zeros(5, 128)
    with pytest.raises(CheckpointError) as error:
        load_classifier(save(tmp_path / "reshaped.ckpt", reshaped))
    message = one_line(error)
    assert "does not fit MNISTClassifier" in message
    assert "tensor model.fc2.weight has shape [5, 128] in the checkpoint but the model expects [10, 128]" in message


def test_ckpt_path_last_is_the_newest_runs_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tutorial's chapters 7 and 8 pass: the checkpoint of the reader's own newest fit, whatever its N."""
    from litquant.checkpoints import CheckpointError, checkpoint_argument

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"run `litquant fit` \(without --ckpt_path\) first"):
        checkpoint_argument("last")
    for version in (0, 1, 10):
        folder = tmp_path / "runs" / "mnist" / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "last.ckpt").write_bytes(b"")
    assert checkpoint_argument("last") == str(Path("runs/mnist/version_10/checkpoints/last.ckpt"))
    assert checkpoint_argument("other.ckpt") == "other.ckpt"


def test_ckpt_path_last_names_the_checkpoint_of_a_fit_without_a_logger(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``litquant fit --trainer.logger false`` keeps its checkpoints in ``runs/checkpoints``: ``last`` (which reads
    the default runs) says so, with the path to pass."""
    from litquant.checkpoints import CheckpointError, checkpoint_argument

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"a fit without a logger left runs/checkpoints/last\.ckpt: pass "
                                              r"--ckpt_path runs/checkpoints/last\.ckpt$"):
        checkpoint_argument("last")
