"""Every script of ``examples/`` runs, as a user runs it, in its own process, on a few hundred real MNIST images.

The runs are independent processes, so they go two at a time (one thread each): first the ones that need
nothing, then the ones that load the checkpoint written by ``checkpoint_save.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from helpers import run_python, tiny, unlisted_noise

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = tiny("--", val_size=128, test_size=0)  # --train_size=256 --val_size=128


def run_examples(commands: dict[str, list[str]], cwd: Path, workers: int = 2) -> dict[str, subprocess.CompletedProcess]:
    """Run ``python examples/<script> ARGS`` for each entry, ``workers`` at a time; fail on a non-zero exit."""

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return run_python(str(EXAMPLES / argv[0]), *argv[1:], cwd=cwd, timeout=900, OMP_NUM_THREADS="1",
                          COLUMNS="100", warnings="")  # Python's warnings shown, as a user sees them

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(commands, pool.map(run, commands.values()), strict=True))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def first(workdir: Path, mnist_dir: Path) -> dict[str, subprocess.CompletedProcess]:
    data = ["--data_dir", str(mnist_dir)]
    return run_examples({
        "checkpoint_save": ["checkpoint_save.py", *data, *TINY, "--max_epochs", "2", "--out", "ckpt"],
        "basic_usage": ["basic_usage.py", *data, *tiny("--", val_size=128), "--max_epochs", "1", "--out", "basic"],
        # these two write where a user's run would: their default folders, under out/examples/
        "callbacks_catalog": ["callbacks_catalog.py", *data, *TINY, "--max_epochs", "2"],
        "loggers_catalog": ["loggers_catalog.py", *data, *TINY, "--max_epochs", "2"],
        "own_model": ["quantize_own_model.py", *data, "--train_size", "256", "--test_size", "256", "--out",
                      "own-model"],
    }, workdir)


@pytest.fixture(scope="module")
def second(first, workdir: Path, mnist_dir: Path) -> dict[str, subprocess.CompletedProcess]:
    data = ["--data_dir", str(mnist_dir), "--test_size", "256"]
    ckpt = ["--ckpt_path", str(workdir / "ckpt" / "checkpoints" / "final.ckpt"), *data, "--train_size", "256"]
    return run_examples({
        "load_model": ["basic_usage.py", *data, "--load_model", "basic/model.pt"],
        "checkpoint_load": ["checkpoint_load.py", *data, "--ckpt_path", "ckpt/checkpoints/final.ckpt"],
        "ptq": ["quantize_pytorch_ptq.py", *ckpt, "--calibration_batches", "1", "--no_compile", "--out", "ptq"],
        "qat": ["quantize_pytorch_qat.py", *ckpt, "--max_steps", "2", "--no_compile", "--out", "qat"],
        "lightning_qat": ["quantize_lightning_callback.py", *ckpt, "--val_size", "128", "--max_steps", "2",
                          "--no_compile", "--out", "lightning-qat"],
        "onnxruntime": ["quantize_onnxruntime.py", *ckpt, "--calibration_batches", "1", "--out", "onnx"],
        "stress_case": ["make_stress_case.py", "ckpt/checkpoints/final.ckpt", "stress/stress.ckpt"],
    }, workdir)


#: How far two accuracies of the same int8 model on the examples' 256 test images may be apart: one image, plus the
#: rounding of a 4-decimal print. The plain-PyTorch loop and the Trainer run the same int8 model on the same images,
#: but its fp32 parts (dequantized activations, bias adds, the final logits) go through float kernels whose order
#: of summation depends on the CPU's vector width and the code path; on a barely trained model (2 epochs on 256
#: images) two logits of one image can tie within that rounding and break either way (84 against 85 of 256 on an
#: AMX CPU). A real difference (another model, unconverted weights) moves many images.
SAME_MODEL_ACCURACY = 1 / 256 + 0.5e-4


def accuracies(output: str, label: str = "test_acc") -> list[float]:
    """Every accuracy an example printed: Lightning's test table and the examples' own lines."""
    return [float(value) for value in re.findall(rf"{label}\s+([0-9.]+)", output)]


def test_basic_usage_trains_saves_and_reloads_the_same_weights(first, second, workdir: Path) -> None:
    trained, reloaded = accuracies(first["basic_usage"].stdout), accuracies(second["load_model"].stdout)
    assert len(trained) == 1 and reloaded == trained  # the saved state_dict is the trained model
    state = torch.load(workdir / "basic" / "model.pt", weights_only=True)
    assert "model.fc2.weight" in state
    assert (workdir / "basic" / "logs" / "version_0" / "metrics_table.md").is_file()


def test_checkpoint_save_keeps_top_k_per_monitor_and_weights_only_files(first, workdir: Path) -> None:
    names = sorted(p.name for p in (workdir / "ckpt" / "checkpoints").glob("*.ckpt"))
    assert len([n for n in names if "val_loss=" in n]) == 2 and len([n for n in names if "val_acc=" in n]) == 2
    assert {"final.ckpt", "weights-epoch=00.ckpt", "weights-epoch=01.ckpt"} <= set(names)
    weights_only = torch.load(workdir / "ckpt" / "checkpoints" / "weights-epoch=01.ckpt", weights_only=True)
    assert "optimizer_states" not in weights_only and "state_dict" in weights_only
    assert re.search(r"^best val_loss: epoch=\d\d-val_loss=\d\.\d{4}\.ckpt", first["checkpoint_save"].stdout, re.M)


def test_checkpoint_load_needs_no_constructor_arguments(second) -> None:
    out = second["checkpoint_load"].stdout
    assert "restored hyper-parameters: {'lr': 0.003" in out
    assert "cannot be called on an instance" in out  # the original tutorial's gotcha, reported by Lightning
    assert len(accuracies(out)) == 1


def test_callbacks_catalog_writes_catalog_and_runs_callbacks(first, workdir: Path) -> None:
    out = first["callbacks_catalog"].stdout
    catalog = json.loads((workdir / "out" / "examples" / "callbacks_info" / "callbacks.json").read_text())
    assert {"ModelCheckpoint", "EarlyStopping", "LearningRateMonitor"} <= {entry["name"] for entry in catalog}
    assert f"{len(catalog)} callbacks described" in out
    assert re.findall(r"^epoch (\d): val_loss", out, re.M) == ["0", "1"]  # the custom callback's hook ran
    assert "report: acc.png, loss.png, metrics_table.csv, metrics_table.md" in out
    metrics = (workdir / "out" / "examples" / "callbacks" / "logs" / "version_0" / "metrics.csv").read_text()
    assert "lr-AdamW" in metrics.splitlines()[0]  # LearningRateMonitor logged


def test_loggers_catalog_lists_backends_and_prints_the_epoch_table(first, workdir: Path) -> None:
    out = first["loggers_catalog"].stdout
    assert re.search(r"^CSVLogger\s+built in \(installed\)$", out, re.M)
    assert re.search(r"^\| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$", out, re.M)
    assert (workdir / "out" / "examples" / "loggers" / "csv" / "version_0" / "loss.png").stat().st_size > 1000
    assert "CSVLogger" in (workdir / "out" / "examples" / "loggers_info" / "loggers.md").read_text()


@pytest.mark.parametrize(("name", "artifact"), [("ptq", "ptq/ptq.pt2"), ("qat", "qat/qat.pt2"),
                                                ("lightning_qat", "lightning-qat/lightning-qat.pt2"),
                                                ("onnxruntime", "onnx/int8.onnx")])
def test_quantization_examples_run_int8_with_pytorch_and_a_trainer(second, workdir: Path, name: str,
                                                                    artifact: str) -> None:
    out = second[name].stdout
    plain = [float(v) for v in re.findall(r"^int8 \(plain PyTorch[^)]*\): test_acc ([0-9.]+)$", out, re.M)]
    trainer = accuracies(out)  # Lightning's test table
    assert len(plain) == 1 and trainer, out
    assert abs(trainer[-1] - plain[0]) <= SAME_MODEL_ACCURACY, out  # the Trainer runs the same int8 model
    path = workdir / artifact
    assert path.is_file() and path.with_suffix(".json").is_file()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["precision"] == "int8" and sidecar["size_bytes"] == path.stat().st_size
    fp32_weights = (workdir / "ckpt" / "checkpoints" / "weights-epoch=01.ckpt").stat().st_size
    assert path.stat().st_size < 0.35 * fp32_weights  # int8 weights, fp32 copies stripped


def test_qat_callback_example_tests_the_reloaded_last_checkpoint(second, workdir: Path) -> None:
    result = second["lightning_qat"]
    assert re.search(r"^tested .*lightning-qat/checkpoints/last\.ckpt$", result.stdout, re.M), result.stdout
    assert "no last checkpoint" not in result.stdout + result.stderr
    before, after = accuracies(result.stdout)[:2]  # plain PyTorch on the converted module; the Trainer after reload
    assert abs(before - after) <= SAME_MODEL_ACCURACY  # reloaded from last.ckpt, converted again: the same model


def test_own_model_and_stress_case_examples_write_what_their_chapters_use(first, second, workdir: Path) -> None:
    assert "reloaded with torch in a fresh process: 100% of 100 predictions agree" in first["own_model"].stdout
    assert (workdir / "own-model" / "own-model.pt2").is_file()
    assert second["stress_case"].stdout.startswith("wrote stress/stress.ckpt: conv1 channels 0-3 x300")


def test_examples_write_nothing_outside_their_output_folders(first, second, workdir: Path) -> None:
    # Only the folders named with --out on the command lines above, and out/ (ignored by git) for the defaults.
    assert sorted(p.name for p in workdir.iterdir()) == ["basic", "ckpt", "lightning-qat", "onnx", "out", "own-model",
                                                         "ptq", "qat", "stress"]
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["examples"]


def test_every_example_is_run(first: dict[str, subprocess.CompletedProcess],
                              second: dict[str, subprocess.CompletedProcess]) -> None:
    run = {Path(result.args[1]).name for result in {**first, **second}.values()}
    assert run == {path.name for path in EXAMPLES.glob("*.py")}


def test_no_example_prints_what_its_user_cannot_act_on(first: dict[str, subprocess.CompletedProcess],
                                                        second: dict[str, subprocess.CompletedProcess]) -> None:
    noise = {name: unlisted_noise(run.stdout + run.stderr) for name, run in {**first, **second}.items()}
    assert {name: lines for name, lines in noise.items() if lines} == {}
