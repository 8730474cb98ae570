"""Which data the ``litquant`` commands use: a checkpoint's saved data settings, and data errors (exit 2).

A real fit on a small real-MNIST subset makes the checkpoint; the commands then run through
:func:`litquant.cli.main` in this process (each as a subprocess would only add its start-up time).
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest

from litquant.cli import main

TINY = ["--data.train_size=256", "--data.val_size=128", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false"]


@pytest.fixture
def run(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``run(*args, cwd=DIR)``: ``litquant ARGS`` through ``main``; returns (exit code, stdout, stderr)."""

    def run_(*args: str, cwd: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run_


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """``last.ckpt`` of a one-epoch fit on real MNIST from an explicit data_dir, 300 test images."""
    workdir = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        assert main(["fit", f"--data.data_dir={mnist_dir}", "--data.test_size=300", "--trainer.max_epochs=1",
                     *TINY]) == 0
    return workdir / "runs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"


def test_test_uses_the_checkpoints_data_unless_told_otherwise(trained: Path, mnist_dir: Path, tmp_path: Path,
                                                               run) -> None:
    code, out, err = run("test", f"--ckpt_path={trained}", "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert code == 0, err
    assert (f"data: mnist from {mnist_dir} (train 256 / val 128 / test 300, seed 42), as saved in the checkpoint"
            in out.splitlines())
    assert "fallback" not in err and "offline" not in err  # the real files, not the small sample
    code, out, err = run("predict", f"--ckpt_path={trained}", "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert code == 0, err
    assert "predicted 300 test images" in out

    code, out, err = run("test", f"--ckpt_path={trained}", "--data.test_size=200",
                         "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert code == 0, err
    assert "test 200, seed 42), as saved in the checkpoint, --data.test_size from the command line" in out
    code, out, err = run("predict", f"--ckpt_path={trained}", "--data.test_size=200",
                         "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert code == 0, err
    assert "predicted 200 test images" in out


def test_quantize_and_evaluate_use_the_checkpoints_data(trained: Path, mnist_dir: Path, tmp_path: Path,
                                                        run) -> None:
    code, out, err = run("evaluate", str(trained), "--batch_size=64", cwd=tmp_path)
    assert code == 0, err
    assert f"data: mnist from {mnist_dir} (train 256 / val 128 / test 300" in out
    code, out, err = run("evaluate", str(trained), "--data.test_size=100", "--data.dataset=fashion-mnist",
                         f"--data.data_dir={tmp_path / 'elsewhere'}", cwd=tmp_path)
    assert code == 2 and "elsewhere" in err  # explicit options win: this folder, not the checkpoint's


def test_a_saved_data_dir_that_is_gone_is_one_line(tmp_path: Path, mnist_dir: Path, trained: Path, run) -> None:
    moved = tmp_path / "moved.ckpt"
    import torch

    checkpoint = torch.load(trained, weights_only=True)
    checkpoint["datamodule_hyper_parameters"]["data_dir"] = str(tmp_path / "gone")
    torch.save(checkpoint, moved)
    code, out, err = run("test", f"--ckpt_path={moved}", cwd=tmp_path)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("litquant: error")]
    assert len(lines) == 1 and str(tmp_path / "gone") in lines[0] and "--data.data_dir DIR" in lines[0]
    code, out, err = run("test", f"--ckpt_path={moved}", f"--data.data_dir={mnist_dir}", "--data.test_size=64",
                         "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert code == 0, err
    assert re.search(r"--data\.data_dir, --data\.test_size from the command line", out)


@pytest.mark.parametrize("command", [["test", "--ckpt_path={ckpt}"], ["validate", "--ckpt_path={ckpt}"],
                                     ["predict", "--ckpt_path={ckpt}"], ["evaluate", "{ckpt}"],
                                     ["quantize", "--ckpt_path={ckpt}", "--method=ptq", "--out={out}"]])
def test_a_checkpoints_data_dir_is_read_never_written(command: list[str], tmp_path: Path, trained: Path,
                                                      run) -> None:
    """A checkpoint chooses which data to read, never where to write: its saved data_dir, empty or missing,
    gets no download and no folder, and one line says what to pass instead."""
    import torch

    checkpoint = torch.load(trained, weights_only=True)
    for target in (tmp_path / "empty", tmp_path / "missing" / "data"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        checkpoint["datamodule_hyper_parameters"]["data_dir"] = str(target)
        crafted = tmp_path / "crafted.ckpt"
        torch.save(checkpoint, crafted)
        args = [arg.format(ckpt=crafted, out=tmp_path / "out") for arg in command]
        code, out, err = run(*args, cwd=tmp_path)
        assert not list((tmp_path / "empty").iterdir()) and not (tmp_path / "missing").exists()
        assert "downloading" not in err  # no mirror contacted
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.startswith("litquant: error")]
        assert len(lines) == 1 and str(target) in lines[0] and "--data.data_dir DIR" in lines[0], err
        assert "never downloaded into" in lines[0]
    # the same folder given as --data.data_dir is the user's choice: downloaded into (the test's mirror is closed)
    code, out, err = run(*args, f"--data.data_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert code == 2 and "downloading" in err and (tmp_path / "empty" / "MNIST" / "raw").is_dir()


def test_a_corrupt_data_file_exits_2_with_one_line(tmp_path: Path, mnist_dir: Path, run) -> None:
    data = tmp_path / "data"
    raw = data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (mnist_dir / "MNIST" / "raw").glob("*-ubyte.gz"):
        shutil.copy(path, raw / path.name)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x07" * 100))
    code, out, err = run("validate", f"--data.data_dir={data}", *TINY, cwd=tmp_path)
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("litquant: error")]
    assert len(errors) == 1 and "train-labels-idx1-ubyte" in errors[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(("logger", "package", "extra"), [("TensorBoardLogger", "tensorboard", "tensorboard"),
                                                          ("MLFlowLogger", "mlflow", "mlflow")])
def test_a_logger_whose_package_is_missing_is_one_line(logger: str, package: str, extra: str, tmp_path: Path,
                                                       run) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here, so the Trainer accepts {logger}")
    code, out, err = run("fit", "--trainer.logger", logger, "--trainer.max_epochs=1", cwd=tmp_path)
    assert code == 2
    packages = f"{package} or tensorboardX" if extra == "tensorboard" else package
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors == [f"litquant: error: --trainer.logger {logger}: {packages} is not installed: "
                      f"pip install 'litquant[{extra}]'"], err
    assert not (tmp_path / "runs").exists()


def test_tensorboard_logs_under_the_root_with_the_table_and_plots(tmp_path: Path, mnist_dir: Path, run) -> None:
    pytest.importorskip("tensorboard", reason="pip install 'litquant[tensorboard]' to run this test")
    code, out, err = run("fit", "--trainer.logger", "TensorBoardLogger", f"--data.data_dir={mnist_dir}",
                         "--data.test_size=128", "--trainer.max_epochs=2", *TINY, cwd=tmp_path)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "mnist" / "version_0"
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    for name in ("metrics.csv", "metrics_table.md", "metrics_table.csv", "loss.png", "acc.png"):
        assert (run_dir / name).is_file(), name
    table = (run_dir / "metrics_table.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["0", "1"]
    assert all("-" not in line.split("|")[2:6] for line in table[2:])  # every metric of every epoch
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing outside the root
