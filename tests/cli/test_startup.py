"""Each command imports only what it needs, in a fresh process as a user starts it: ``litquant --version`` and
``--help`` import no torch, no Lightning (and no jsonargparse); ``predict`` and ``evaluate`` of an ``.onnx`` no torch
and no Lightning; ``predict`` of a ``.pt2`` torch but no Lightning. ``python -m litquant`` runs the same command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_python

HEAVY = ("torch", "lightning", "jsonargparse", "onnxruntime", "torchao")
#: ``litquant ARGS`` through ``main`` in a fresh process, then which of :data:`HEAVY` it imported, on a last line.
COMMAND = ("import sys\n"
           "from litquant.cli import main\n"
           "code = main(sys.argv[1:])\n"
           f"print('imported:', ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
           "sys.exit(code)\n")


def run_command(*args: str) -> tuple[str, set[str]]:
    """``litquant ARGS`` in a fresh process: its output (the last line left out) and the heavy modules it
    imported."""
    result = run_python("-c", COMMAND, *args)
    *lines, last = result.stdout.splitlines()
    assert last.startswith("imported: "), result.stdout
    return "\n".join(lines), set(filter(None, last.removeprefix("imported: ").split(",")))


@pytest.mark.parametrize("argument", ["--version", "--help"])
def test_version_and_help_import_no_torch(argument: str) -> None:
    output, imported = run_command(argument)
    assert "litquant" in output and not imported, imported


def test_python_m_litquant_is_the_command() -> None:
    from litquant import __version__

    assert run_python("-m", "litquant", "--version").stdout.strip() == f"litquant {__version__}"


@pytest.fixture(scope="module")
def artifacts(tiny_checkpoint: Path, mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An int8 ``.pt2`` (PT2E PTQ) and an int8 ``.onnx`` (ONNX Runtime) of the session's small checkpoint; they
    carry its data settings (256 test images of the real MNIST files)."""
    from quantization_helpers import small_datamodule

    from litquant.quantization import QuantizeConfig, quantize

    out = tmp_path_factory.mktemp("startup-artifacts")
    return {method: quantize(method, tiny_checkpoint, small_datamodule(mnist_dir), out,
                             config=QuantizeConfig(calibration_batches=4), progress=False)
            for method in ("ptq", "onnxruntime")}


@pytest.fixture(scope="module")
def digit_pngs(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four real test digits as image files: as MNIST stores them, and black on white at 112×112 (resized)."""
    from PIL import Image

    from litquant.data import read_idx

    folder = tmp_path_factory.mktemp("startup-digits")
    images = read_idx(mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:4]
    for index, image in enumerate(images):
        picture = Image.fromarray(255 - image).resize((112, 112)) if index % 2 else Image.fromarray(image)
        picture.save(folder / f"digit{index}.png")
    return sorted(folder.iterdir())


def _predictions_through_torch(artifact: Path, pngs: list[Path]) -> str:
    """What ``litquant predict --model ARTIFACT PNGS`` printed when it ran through PyTorch: the images
    normalised by the data module's ``normalize``, the softmax in torch."""
    import torch

    from litquant.artifacts.loading import load_artifact
    from litquant.data import normalize
    from litquant.images import format_predictions, load_images

    paths, images = load_images(pngs)
    with torch.inference_mode():
        probabilities = torch.as_tensor(load_artifact(artifact, runner="eager")(normalize(torch.from_numpy(images))))
        confidence, label = probabilities.float().softmax(dim=1).max(dim=1)
    return format_predictions(paths, list(zip(label.tolist(), confidence.tolist(), strict=True)))


def test_predict_of_an_onnx_imports_no_torch_and_no_lightning(artifacts, digit_pngs) -> None:
    output, imported = run_command("predict", "--model", str(artifacts["onnxruntime"]), *map(str, digit_pngs))
    assert not imported & {"torch", "torchao", "lightning"}, imported
    assert output == _predictions_through_torch(artifacts["onnxruntime"], digit_pngs)


def test_an_onnx_quantized_for_vnni_is_checked_against_this_cpu_without_torch(artifacts, digit_pngs,
                                                                               tmp_path: Path) -> None:
    """An ``.onnx`` whose int8 kernels would saturate without VNNI is checked against this CPU's flags (what ONNX
    Runtime's kernels use), not through torch."""
    from litquant.artifacts.loading import read_description
    from litquant.artifacts.saving import save_onnx

    source = artifacts["onnxruntime"]
    description = read_description(source)
    int8_range = {**description.extra["int8_range"], "chosen_for_vnni": True, "saturates_without_vnni": True}
    copy = save_onnx(source, tmp_path / "vnni.onnx",
                     description.replace(extra={**description.extra, "int8_range": int8_range}))
    _, imported = run_command("predict", "--model", str(copy), str(digit_pngs[0]))
    assert not imported & {"torch", "torchao", "lightning"}, imported


def test_predict_of_a_pt2_imports_no_lightning(artifacts, digit_pngs) -> None:
    output, imported = run_command("predict", "--model", str(artifacts["ptq"]), *map(str, digit_pngs))
    assert "torch" in imported and "lightning" not in imported, imported
    expected = _predictions_through_torch(artifacts["ptq"], digit_pngs)
    assert [line.split()[:2] for line in output.splitlines()] == [line.split()[:2] for line in expected.splitlines()]
    confidences = [float(line.split()[2]) for line in output.splitlines()[1:]]
    assert confidences == pytest.approx([float(line.split()[2]) for line in expected.splitlines()[1:]], abs=2e-4)


def test_evaluate_of_an_onnx_imports_no_torch_and_no_lightning_and_agrees(artifacts, mnist_dir: Path) -> None:
    from quantization_helpers import small_datamodule

    from litquant.artifacts.loading import load_artifact
    from litquant.evaluation import evaluate

    output, imported = run_command("evaluate", str(artifacts["onnxruntime"]))
    assert not imported & {"torch", "torchao", "lightning"}, imported
    assert (f"data: mnist from {mnist_dir} (train 1024 / val 256 / test 256, seed 42), as saved in the artifact"
            in output)
    accuracy = evaluate(load_artifact(artifacts["onnxruntime"]), small_datamodule(mnist_dir), batch_size=256)
    assert re.search(r"^test_acc (\S+)  \(", output, re.MULTILINE).group(1) == f"{accuracy:.4f}"

