"""Artifacts run from the file alone: plain PyTorch and a Lightning Trainer measure them; unsafe files are
refused without running anything."""

from __future__ import annotations

import contextlib
import json
import pickle
import zipfile
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from quantization_helpers import small_datamodule

from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.loading import load_artifact
from litquant.evaluation import ArtifactModule, evaluate, measure_latency
from litquant.quantization import METHODS


@pytest.fixture(scope="module")
def made(tiny_artifacts: dict[str, Path]) -> dict[str, Path]:
    return tiny_artifacts


def _trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False)


@pytest.mark.parametrize("method", ("fp32", *METHODS))
def test_inference_with_pytorch_and_with_a_trainer(made: dict[str, Path], mnist_dir: Path, method: str) -> None:
    datamodule = small_datamodule(mnist_dir)
    model = load_artifact(made[method], compile=False)
    accuracy = evaluate(model, datamodule)
    assert accuracy > 0.6
    module = ArtifactModule(model)
    results = _trainer().test(module, datamodule=datamodule, verbose=False)
    assert results[0]["test_acc"] == pytest.approx(accuracy, abs=1e-6)
    assert results[0]["test_loss"] > 0
    probabilities = torch.cat(_trainer().predict(module, datamodule=datamodule))
    assert probabilities.shape == (256, 10)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(256))


def test_compiled_int8_matches_the_reference_graph(made: dict[str, Path], mnist_dir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """Inductor with freezing lowers the int8 graph to oneDNN int8 kernels; outputs stay those of the
    reference graph, for any batch size (padded to a compiled size)."""
    compiled = load_artifact(made["ptq"], compile=True)
    reference = load_artifact(made["ptq"], compile=False)
    datamodule = small_datamodule(mnist_dir)
    images = datamodule.normalize(datamodule.split("test").images[:5].unsqueeze(1))
    fast, slow = compiled(images), reference(images)
    assert "compiling int8 model with inductor" in capsys.readouterr().err
    assert fast.shape == (5, 10)
    assert (fast.argmax(1) == slow.argmax(1)).all()
    torch.testing.assert_close(fast, slow, atol=0.1, rtol=0.05)
    assert measure_latency(compiled, batch_size=8, threads=1, repeats=3, warmup=1) > 0


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such artifact"):
        load_artifact(tmp_path / "nothing.pt2")
    other = tmp_path / "model.bin"
    other.write_bytes(b"\0")
    with pytest.raises(ArtifactError, match="expected .pt2 or .onnx"):
        load_artifact(other)


class _Payload:
    """Unpickling this writes a marker file: what a malicious artifact would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _rewrite(source: Path, target: Path, change) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = change(item.filename, old.read(item.filename))
            new.writestr(item, data)


@pytest.mark.parametrize("attack", ("pickled weight", "pickled example inputs", "extra native library"))
def test_unsafe_pt2_is_refused_and_nothing_runs(made: dict[str, Path], tmp_path: Path, attack: str) -> None:
    marker = tmp_path / "marker.txt"
    evil = pickle.dumps(_Payload(marker))
    crafted = tmp_path / "crafted.pt2"

    def change(name: str, data: bytes) -> bytes:
        if attack == "pickled weight" and name.endswith("weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"]))
            config["config"][first]["use_pickle"] = True
            return json.dumps(config).encode()
        if attack == "pickled weight" and name.endswith("weights/weight_0"):
            return evil
        if attack == "pickled example inputs" and "sample_inputs" in name:
            return evil
        return data

    _rewrite(made["ptq"], crafted, change)
    if attack == "extra native library":
        with zipfile.ZipFile(crafted, "a") as archive:
            root = archive.namelist()[0].split("/")[0]
            archive.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    with pytest.raises(UnsafeArtifactError, match="refused to load"):
        load_artifact(crafted, compile=False)
    assert not marker.exists()
    if attack != "extra native library":
        # the attack is real: loading the same file with torch.export.load alone runs the payload
        with contextlib.suppress(Exception):
            torch.export.load(crafted)
        assert marker.read_text() == "code ran"
