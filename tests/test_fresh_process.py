"""Every artifact reloads and gives its accuracy in a new Python process, from its file alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from quantization_helpers import small_datamodule

from litquant.artifacts.loading import load_artifact
from litquant.evaluation import evaluate
from litquant.fresh_process import check_all_in_fresh_process
from litquant.quantization import METHODS


@pytest.fixture(scope="module")
def made(tiny_artifacts: dict[str, Path]) -> dict[str, Path]:
    return tiny_artifacts


def test_every_artifact_reloads_in_a_fresh_process(made: dict[str, Path], mnist_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt2"
    broken.write_bytes(b"not a zip")
    paths = [made[name] for name in ("fp32", *METHODS)]
    *results, failed = check_all_in_fresh_process([*paths, broken], mnist_dir, batches=1, batch_size=128)
    datamodule = small_datamodule(mnist_dir, test_size=128)
    for path, result in zip(paths, results, strict=True):
        assert result["ok"], result
        assert result["samples"] == 128
        assert result["accuracy"] == pytest.approx(evaluate(load_artifact(path, compile=False), datamodule))
    assert not failed["ok"] and "not a .pt2 archive" in failed["error"]  # reported, the others still ran


def test_a_model_made_on_the_offline_fallback_reloads_on_it_too(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """No data folder given, an empty cache and no network (the conftest's): the fresh process is not handed the
    cache folder, where it could not fall back, and so checks the model on the same fallback data."""
    from litquant.data import MNISTDataModule
    from litquant.fresh_process import check_in_fresh_process, data_dir_for_child
    from litquant.quantization import export_fp32

    datamodule = MNISTDataModule(test_size=256)
    datamodule.setup("test")
    assert datamodule.source.startswith("offline fallback")
    path = export_fp32(tiny_checkpoint, tmp_path, datamodule=datamodule, onnx=False, progress=False)
    assert data_dir_for_child(datamodule) is None
    assert check_in_fresh_process(path, data_dir_for_child(datamodule), batches=1)["ok"]
    assert not check_in_fresh_process(path, datamodule.data_dir, batches=1)["ok"]  # a given folder never falls back
    assert data_dir_for_child(small_datamodule(tmp_path)) == str(tmp_path)
