"""The ``litquant`` command line, run as a user runs it: real subprocesses, real Trainers, real files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--data.train_size=256", "--data.val_size=256", "--data.test_size=256", "--data.batch_size=64",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def litquant(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "LITQUANT_DATA": str(cwd / "no-cache")}
    result = subprocess.run([sys.executable, "-m", "litquant.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"litquant {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mnist_dir: Path) -> Path:
    """One tiny two-epoch fit through the CLI, shared by the tests below."""
    workdir = tmp_path_factory.mktemp("cli")
    litquant("fit", "--trainer.max_epochs=2", f"--data.data_dir={mnist_dir}", *TINY, cwd=workdir)
    return workdir


def test_fit_writes_checkpoints_logs_table_and_plots(fitted: Path) -> None:
    checkpoints = sorted(p.name for p in (fitted / "runs" / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in checkpoints
    assert any(name.startswith("epoch=01-val_loss=") for name in checkpoints)
    assert any(name.startswith("epoch=01-val_acc=") for name in checkpoints)
    assert not (fitted / "runs" / "checkpoints" / "interrupted.ckpt").exists()
    log_dir = fitted / "runs" / "mnist" / "version_0"
    for name in ("metrics.csv", "metrics_table.csv", "metrics_table.md", "loss.png", "acc.png", "config.yaml"):
        assert (log_dir / name).stat().st_size > 0, name
    with open(log_dir / "metrics_table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1]


def test_test_command_is_the_seeds_load_model(fitted: Path, mnist_dir: Path) -> None:
    best = next((fitted / "runs" / "checkpoints").glob("epoch=01-val_loss=*.ckpt"))
    result = litquant("test", f"--ckpt_path={best}", f"--data.data_dir={mnist_dir}", *TINY, cwd=fitted)
    assert "test_acc" in result.stdout


def test_load_from_checkpoint_needs_no_constructor_arguments_in_a_fresh_process(fitted: Path) -> None:
    best = next((fitted / "runs" / "checkpoints").glob("epoch=01-val_acc=*.ckpt"))
    code = (
        "import sys, torch\n"
        "from litquant.model import MNISTClassifier\n"
        "model = MNISTClassifier.load_from_checkpoint(sys.argv[1], map_location='cpu').eval()\n"
        "print(model.hparams.lr, tuple(model(torch.zeros(2, 1, 28, 28)).shape))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(best)], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-2:] == ["(2,", "10)"]


def test_resuming_a_finished_one_cycle_fit_with_more_epochs_says_what_to_do(fitted: Path, mnist_dir: Path) -> None:
    result = litquant("fit", "--trainer.max_epochs=3", "--ckpt_path=last", f"--data.data_dir={mnist_dir}", *TINY,
                      cwd=fitted, check=False)
    assert result.returncode == 2
    assert "resume with the --trainer.max_epochs and data size it was started with" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["frobnicate"], "unknown command"),
        (["fit", "--trainer.max_epochs=oops"], "max_epochs"),
        (["quantize", "--ckpt_path=missing.ckpt", "--method=ptq"], "checkpoint not found"),
        (["quantize", "--ckpt_path=missing.ckpt", "--method=fp4"], "unknown --method"),
        (["demo", "--methods=ptq,magic"], "unknown method"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path: Path, args: list[str], needle: str) -> None:
    result = litquant(*args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = litquant("--help", cwd=tmp_path)
    for command in ("fit", "validate", "test", "predict", "demo", "quantize", "evaluate", "info"):
        assert f"  {command} " in result.stdout
