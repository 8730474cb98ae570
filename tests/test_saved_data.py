"""The data settings a checkpoint or an artifact carries (``litquant.data.settings``, ``litquant.saved_data``):
parsed into the expected keys and types only, written into every artifact, and used by the commands that load
one as a checkpoint's are, so that ``litquant evaluate ARTIFACT`` tests on the data the model was made with."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from litquant.artifacts.description import ArtifactDescription, describe
from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.loading import read_description
from litquant.cli import main
from litquant.data import DataError
from litquant.data.settings import SAVED_DATA_KEYS, data_settings, parse_data_settings
from litquant.saved_data import saved_data_settings


def test_parsing_keeps_only_the_expected_keys_of_the_expected_types() -> None:
    raw = {"dataset": "mnist", "data_dir": "~/data", "train_size": None, "val_size": 500, "seed": 7,
           "num_workers": 4, "download": True, "mirrors": "http://example.invalid/", "__class__": "os.system"}
    assert parse_data_settings(raw) == {"dataset": "mnist", "data_dir": "~/data", "val_size": 500,
                                        "train_size": None, "seed": 7}
    for bad in ({"dataset": "cifar"}, {"data_dir": ["a"]}, {"val_size": -1}, {"seed": True}, {"batch_size": "64"},
                {"test_size": 1.5}, ["dataset", "mnist"]):
        with pytest.raises(DataError):
            parse_data_settings(bad)


def test_an_artifacts_description_carries_its_data_settings(make_datamodule, tmp_path: Path) -> None:
    datamodule = make_datamodule(seed=3)
    description = describe("fp32", "fp32", datamodule=datamodule)
    assert description.data == data_settings(datamodule)
    assert set(description.data) == set(SAVED_DATA_KEYS) and description.data["seed"] == 3
    assert ArtifactDescription.from_json(description.to_json()) == description
    assert describe("fp32", "fp32").data is None and "data" not in describe("fp32", "fp32").to_dict()
    crafted = {**description.to_dict(), "data": {**description.data, "data_dir": {"$ref": "x"}}}
    with pytest.raises(ArtifactError, match="'data'"):
        ArtifactDescription.from_dict(crafted)
    extra_keys = {**description.to_dict(), "data": {**description.data, "mirrors": "http://example.invalid/"}}
    assert ArtifactDescription.from_dict(extra_keys).data == description.data


@pytest.fixture(scope="module")
def ptq_artifact(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``litquant quantize --method ptq`` of the session's tiny checkpoint (trained from an explicit data_dir)."""
    out = tmp_path_factory.mktemp("ptq")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["quantize", f"--ckpt_path={tiny_checkpoint}", "--method=ptq", f"--out={out}",
                     "--quant.calibration_batches=2", "--quant.accuracy_batches=1"]) == 0
    path = out / "ptq.pt2"
    path.with_suffix(".stdout").write_text(printed.getvalue())
    return path


def test_quantize_says_the_accuracy_it_measured_and_the_size(ptq_artifact: Path) -> None:
    accuracy = read_description(ptq_artifact).accuracy
    size = ptq_artifact.stat().st_size / 1e6
    assert (f"{ptq_artifact}: {size:.2f} MB, accuracy int8 {accuracy['int8']:.4f}, fp32 {accuracy['fp32']:.4f} on "
            f"256 validation images (litquant describe {ptq_artifact} for the rest)"
            in ptq_artifact.with_suffix(".stdout").read_text().splitlines())


def test_evaluate_an_artifact_uses_the_data_it_was_made_with(ptq_artifact: Path, tiny_checkpoint: Path,
                                                             mnist_dir: Path, tmp_path: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """In a folder where the default data cache is empty and no mirror answers, the artifact's own data_dir is
    used: the real test split of the size it was made with, not the offline fallback."""
    assert read_description(ptq_artifact).data == saved_data_settings(tiny_checkpoint)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(ptq_artifact), "--runner=eager"]) == 0
    out, err = capsys.readouterr()
    assert (f"data: mnist from {mnist_dir} (train 1024 / val 256 / test 256, seed 42), as saved in the artifact"
            in out.splitlines())
    assert "FALLBACK" not in err and "download" not in err.lower()
    assert main(["evaluate", str(ptq_artifact), "--runner=eager", "--data.test_size=128"]) == 0
    overridden = "test 128, seed 42), as saved in the artifact, --data.test_size from the command line"
    assert overridden in capsys.readouterr().out


def test_describe_prints_the_description_as_lines_and_as_json(ptq_artifact: Path, mnist_dir: Path, capsys) -> None:
    import json

    capsys.readouterr()
    assert main(["describe", str(ptq_artifact)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(ptq_artifact)
    rows = dict(line.strip().split(None, 1) for line in lines[1:])
    assert rows["model"].startswith("ptq (int8), ") and rows["model"].endswith(" MB")
    assert rows["input"].startswith("x [batch, 1, 28, 28] float32, mnist")
    assert rows["accuracy"].startswith("int8 0.") and rows["accuracy"].endswith("on 256 validation images")
    assert rows["data"].startswith(f"mnist from {mnist_dir} (train_size 1024, val_size 256, test_size 256")
    assert main(["describe", str(ptq_artifact), "--format=json"]) == 0
    assert json.loads(capsys.readouterr().out) == read_description(ptq_artifact).to_dict()
    assert main(["describe", "missing.pt2"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == "litquant: error: artifact not found: missing.pt2"
