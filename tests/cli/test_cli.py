"""The ``litquant`` command line, run as a user runs it: real subprocesses, real Trainers, real files.

The many bad-input cases call :func:`litquant.cli.main` in this process (a process each would only add its
start-up time); one of them also runs as a real process, to show that what a user sees is the same.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import TINY, run_litquant, run_python

RUN0 = Path("runs") / "mnist" / "version_0"  # the first fit's run folder: logs, and its checkpoints/


@pytest.fixture
def in_process(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``in_process(*args, cwd=DIR)``: run ``litquant ARGS`` through ``main``; returns (exit code, stderr).
    ``in_process.stdout`` then holds what it printed to stdout."""
    from litquant.cli import main

    def run(*args: str, cwd: Path) -> tuple[int, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("LITQUANT_DATA", str(cwd / "no-cache"))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        run.stdout = captured.out
        return code, captured.err
    return run


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mnist_dir: Path) -> Path:
    """One tiny fit through the CLI with the default length (two epochs), shared by the tests below."""
    workdir = tmp_path_factory.mktemp("cli")
    run_litquant("fit", f"--data.data_dir={mnist_dir}", *TINY, cwd=workdir)
    return workdir


@pytest.fixture(scope="module")
def best_ckpt(fitted: Path) -> Path:
    """The best-``val_acc`` checkpoint of :func:`fitted` (its second epoch)."""
    return next((fitted / RUN0 / "checkpoints").glob("epoch=01-val_acc=*.ckpt"))


def test_fit_writes_checkpoints_logs_table_and_plots(fitted: Path) -> None:
    checkpoints = sorted(p.name for p in (fitted / RUN0 / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in checkpoints
    assert any(name.startswith("epoch=01-val_loss=") for name in checkpoints)
    assert any(name.startswith("epoch=01-val_acc=") for name in checkpoints)
    assert not (fitted / RUN0 / "checkpoints" / "interrupted.ckpt").exists()
    log_dir = fitted / RUN0
    for name in ("metrics.csv", "metrics_table.csv", "metrics_table.md", "loss.png", "acc.png", "config.yaml"):
        assert (log_dir / name).stat().st_size > 0, name
    with open(log_dir / "metrics_table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1]  # the default length, not Lightning's 1000 epochs
    assert "max_epochs: 2" in (log_dir / "config.yaml").read_text()


def test_test_command_is_the_tutorials_load_model(fitted: Path, mnist_dir: Path) -> None:
    best = next((fitted / RUN0 / "checkpoints").glob("epoch=01-val_loss=*.ckpt"))
    result = run_litquant("test", f"--ckpt_path={best}", f"--data.data_dir={mnist_dir}", *TINY, cwd=fitted)
    assert "test_acc" in result.stdout


def test_load_from_checkpoint_needs_no_constructor_arguments_in_a_fresh_process(best_ckpt: Path) -> None:
    code = (
        "import sys, torch\n"
        "from litquant.model import MNISTClassifier\n"
        "model = MNISTClassifier.load_from_checkpoint(sys.argv[1], map_location='cpu').eval()\n"
        "print(model.hparams.lr, tuple(model(torch.zeros(2, 1, 28, 28)).shape))\n"
    )
    result = run_python("-c", code, str(best_ckpt))
    assert result.stdout.split()[-2:] == ["(2,", "10)"]


def test_resuming_a_finished_one_cycle_fit_with_more_epochs_says_what_to_do(fitted: Path, mnist_dir: Path) -> None:
    before = sorted(p.relative_to(fitted) for p in (fitted / "runs").rglob("*"))
    result = run_litquant("fit", "--trainer.max_epochs=3", "--ckpt_path=last", f"--data.data_dir={mnist_dir}", *TINY,
                      cwd=fitted, check=False)
    assert result.returncode == 2
    assert "resume with the --trainer.max_epochs and data size it was started with" in result.stderr
    assert "(--trainer.max_epochs 2 with this data)" in result.stderr  # the default length, said as a number
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(fitted) for p in (fitted / "runs").rglob("*")) == before  # no empty run folder


def test_a_fit_that_fails_before_training_leaves_no_run_folder(tmp_path: Path, in_process) -> None:
    (tmp_path / "empty").mkdir()
    code, stderr = in_process("fit", "--data.data_dir=empty", "--data.download=false", *TINY, cwd=tmp_path)
    assert code == 2 and "downloading is off" in stderr
    assert not list((tmp_path / "runs").rglob("version_*"))


def test_a_fast_dev_run_writes_nothing_and_a_replaced_optimizer_is_said(tmp_path: Path, in_process,
                                                                      mnist_dir: Path) -> None:
    """``--trainer.fast_dev_run`` checks the code, Lightning logging nothing: no table or plots in ``runs/``
    either. ``--optimizer SGD`` replaces the model's AdamW and its one-cycle schedule: one line says so."""
    code, stderr = in_process("fit", "--trainer.fast_dev_run=true", "--optimizer=SGD", "--optimizer.lr=0.01",
                              f"--data.data_dir={mnist_dir}", *TINY, cwd=tmp_path)
    assert code == 0, stderr
    assert [line for line in in_process.stdout.splitlines() if "--optimizer" in line] == [
        "--optimizer SGD replaces the model's adamw (--model.optimizer, --model.lr, --model.weight_decay) and trains "
        "without its onecycle schedule (--lr_scheduler gives one); --model.optimizer sgd keeps the schedule"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a fast_dev_run writes no file"
    code, _ = in_process("fit", "--trainer.fast_dev_run=true", f"--data.data_dir={mnist_dir}", *TINY, cwd=tmp_path)
    assert code == 0 and "--optimizer" not in in_process.stdout


def test_resuming_a_complete_fit_says_so_in_one_line_and_writes_nothing(fitted: Path, mnist_dir: Path) -> None:
    before = sorted(p.relative_to(fitted) for p in (fitted / "runs").rglob("*"))
    result = run_litquant("fit", "--ckpt_path=last", f"--data.data_dir={mnist_dir}", *TINY, cwd=fitted)
    assert result.returncode == 0
    last = RUN0 / "checkpoints" / "last.ckpt"
    assert result.stdout.splitlines() == [
        f"litquant: {last} is a complete fit (2 epochs, --trainer.max_epochs 2): nothing to train; its one-cycle "
        "schedule has ended, so for a longer training start a new fit with a larger length "
        "(`litquant fit --trainer.max_epochs 3`)"]
    assert "error" not in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.relative_to(fitted) for p in (fitted / "runs").rglob("*")) == before


# Messages a user cannot act on, which a plain fit or a failing one must not print.
LIBRARY_NOISE = ["(ckpt_path=None)` was called without a model", "is set, but there is no last checkpoint",
                 "weights_only", "litlogger", "LightningCLI's args parameter", "site-packages",
                 "torchvision is not installed"]


def run_folders(root: Path) -> list[str]:
    return sorted((p.name for p in (root / "runs" / "mnist").iterdir()), key=lambda name: int(name.split("_")[1]))


def test_a_plain_fit_never_resumes_and_keeps_earlier_runs(tmp_path: Path, mnist_dir: Path) -> None:
    fit = ["fit", "--trainer.max_epochs=1", f"--data.data_dir={mnist_dir}", *TINY]
    failed = run_litquant(*fit, "--data.batch_size=0", cwd=tmp_path, check=False, warnings="")  # fails inside fit
    assert failed.returncode == 2 and "batch_size" in failed.stderr
    assert not list(tmp_path.rglob("*.ckpt"))  # no interrupted.ckpt for a fit that never trained
    first = run_litquant(*fit, cwd=tmp_path, warnings="")
    first_run = tmp_path / "runs" / "mnist" / run_folders(tmp_path)[-1]
    kept = {p.name: p.read_bytes() for p in (first_run / "checkpoints").iterdir()}
    assert "last.ckpt" in kept and "Restoring states" not in first.stderr
    second = run_litquant(*fit, "--model.lr=0.01", cwd=tmp_path, warnings="")
    assert "Restoring states" not in second.stderr  # the finished first run is not picked up
    second_run = tmp_path / "runs" / "mnist" / run_folders(tmp_path)[-1]
    assert second_run != first_run
    assert f"best val_acc: runs/mnist/{second_run.name}/checkpoints/epoch=00-val_acc=" in second.stdout
    assert final_epoch(second_run) == 0 and "lr: 0.01" in (second_run / "config.yaml").read_text()
    assert {p.name: p.read_bytes() for p in (first_run / "checkpoints").iterdir()} == kept
    for result in (failed, first, second):
        for noise in LIBRARY_NOISE:
            assert noise not in result.stdout + result.stderr, (noise, result.stderr)


def final_epoch(run: Path) -> int:
    with open(run / "metrics.csv") as handle:
        return max(int(row["epoch"]) for row in csv.DictReader(handle) if row.get("val_acc"))


def test_test_and_predict_log_apart_from_training_runs(fitted: Path, tmp_path: Path, mnist_dir: Path,
                                                       in_process, best_ckpt: Path) -> None:
    data = [f"--data.data_dir={mnist_dir}", *TINY]
    code, stderr = in_process("predict", f"--ckpt_path={best_ckpt}", *data, cwd=tmp_path)
    assert code == 0, stderr
    predictions = tmp_path / "runs" / "predict" / "version_0" / "predictions.csv"
    assert f"predicted 256 test images: {predictions.relative_to(tmp_path)}" in in_process.stdout
    with open(predictions) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 256 and {int(row["label"]) for row in rows} <= set(range(10))
    from litquant.data import MNISTDataModule

    truth = MNISTDataModule(data_dir=str(mnist_dir), test_size=256).split("test").labels.tolist()
    assert [int(row["true_label"]) for row in rows] == truth
    code, stderr = in_process("test", f"--ckpt_path={best_ckpt}", *data, cwd=tmp_path)
    assert code == 0 and "test_acc" in in_process.stdout
    test_run = tmp_path / "runs" / "test" / "version_0"
    assert (test_run / "metrics.csv").is_file()
    pictures = ("confusion_matrix.csv", "confusion_matrix.png", "per_class_accuracy.csv")
    assert all((test_run / name).is_file() for name in pictures)  # where people would rather look
    assert f"Confusion matrix: {test_run.relative_to(tmp_path)}/{{{', '.join(pictures)}}}" in in_process.stdout
    with open(test_run / "per_class_accuracy.csv") as handle:
        assert sum(int(row["images"]) for row in csv.DictReader(handle)) == 256
    assert not (tmp_path / "runs" / "mnist").exists()  # nothing that looks like a training run
    assert "dirpath has changed" not in stderr


def test_version_and_demo_help_with_defaults(tmp_path: Path, in_process) -> None:
    from litquant import __version__

    assert in_process("--version", cwd=tmp_path)[0] == 0
    assert in_process.stdout.strip() == f"litquant {__version__}"
    assert in_process("demo", "--help", cwd=tmp_path)[0] == 0
    assert "(default: 32)" in in_process.stdout and "(default: demo)" in in_process.stdout
    assert in_process("fit", "--help", cwd=tmp_path)[0] == 0
    assert "`last`" in " ".join(in_process.stdout.split())  # --ckpt_path says what `last` means


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory, mnist_dir: Path) -> tuple[Path, list[int]]:
    """Eight real test digits as PNG files: half black-on-white RGB, half as MNIST stores them."""
    import numpy as np
    from PIL import Image

    from litquant.data import read_idx

    folder = tmp_path_factory.mktemp("digits")
    images = read_idx(mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:8]
    labels = read_idx(mnist_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")[:8].tolist()
    for index, image in enumerate(images):
        if index % 2:
            picture = Image.fromarray(np.repeat((255 - image)[:, :, None], 3, axis=2)).resize((112, 112))
        else:
            picture = Image.fromarray(image)
        picture.save(folder / f"digit{index}.png")
    return folder, labels


def test_predict_classifies_image_files_and_folders(fitted: Path, digit_pngs, mnist_dir: Path, best_ckpt: Path) -> None:
    folder, labels = digit_pngs
    result = run_litquant("predict", f"--ckpt_path={best_ckpt}", str(folder), cwd=fitted)
    lines = [line for line in result.stdout.splitlines() if "digit" in line]
    assert len(lines) == len(labels)
    predicted = [int(line.split()[1]) for line in lines]
    # The files must be read as the model saw MNIST: compare with its predictions on the original tensors.
    import torch

    from litquant.data import normalize, read_idx
    from litquant.model import MNISTClassifier

    model = MNISTClassifier.load_from_checkpoint(best_ckpt, map_location="cpu").eval()
    originals = torch.from_numpy(read_idx(mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:8].copy())
    with torch.inference_mode():
        expected = model(normalize(originals.unsqueeze(1))).argmax(dim=1).tolist()
    assert sum(p == e for p, e in zip(predicted, expected, strict=True)) >= 7
    single = run_litquant("predict", f"--ckpt_path={best_ckpt}", str(folder / "digit0.png"), cwd=fitted)
    assert len([line for line in single.stdout.splitlines() if "digit0.png" in line]) == 1


def test_evaluate_agrees_with_the_trainers_test_accuracy(fitted: Path, mnist_dir: Path, best_ckpt: Path) -> None:
    plain = run_litquant("evaluate", str(best_ckpt), f"--data.data_dir={mnist_dir}", "--data.test_size=256", cwd=fitted)
    accuracy = float(plain.stdout.split("test_acc")[1].split()[0])
    trainer = run_litquant("test", f"--ckpt_path={best_ckpt}", f"--data.data_dir={mnist_dir}", *TINY, cwd=fitted)
    trainer_accuracy = float(trainer.stdout.split("test_acc")[1].split()[0])
    assert accuracy == pytest.approx(trainer_accuracy, abs=1e-4)


def test_info_lists_lightning_callbacks_as_json(tmp_path: Path) -> None:
    import json

    import lightning.pytorch.callbacks as callbacks

    result = run_litquant("info", "callbacks", "--format=json", cwd=tmp_path)
    names = {entry["name"] for entry in json.loads(result.stdout)}
    assert names == set(callbacks.__all__)


def test_bad_inputs_to_predict_and_evaluate(tmp_path: Path, digit_pngs, in_process, best_ckpt: Path) -> None:
    digit = digit_pngs[0] / "digit0.png"
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    import torch

    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}}, tmp_path / "other.ckpt")
    cases = [
        (["predict", f"--ckpt_path={best_ckpt}", str(tmp_path / "notes.png")], "notes.png"),
        (["predict", f"--ckpt_path={best_ckpt}", str(tmp_path / "empty.png")], "empty.png"),
        (["predict", f"--ckpt_path={best_ckpt}", str(tmp_path / "missing.png")], "missing.png"),
        (["predict", f"--ckpt_path={tmp_path / 'other.ckpt'}", str(digit)], "other.ckpt"),
        (["evaluate", str(tmp_path / "other.ckpt")], "other.ckpt"),
        (["evaluate", str(tmp_path / "nothing.pt2")], "nothing.pt2"),
    ]
    for args, needle in cases:
        code, stderr = in_process(*args, cwd=tmp_path)
        assert code == 2, (args, stderr)
        assert needle in stderr and "Traceback" not in stderr, (args, stderr)
    real = run_litquant(*cases[0][0], cwd=tmp_path, check=False)  # and as a real process
    assert real.returncode == 2 and cases[0][1] in real.stderr and "Traceback" not in real.stderr
    assert [line for line in real.stderr.splitlines() if line.startswith("litquant:")] == \
        [line for line in in_process(*cases[0][0], cwd=tmp_path)[1].splitlines() if line.startswith("litquant:")]


def test_predict_reports_and_skips_unreadable_files(tmp_path: Path, digit_pngs, in_process, best_ckpt: Path) -> None:
    import shutil

    from test_images import TINY_EPS

    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("digit0.png", "digit1.png"):
        shutil.copy(digit_pngs[0] / name, folder / name)
    shutil.copy(digit_pngs[0] / "digit2.png", folder / "evil\n\x1b[2Jname.png")
    (folder / "junk.png").write_text("not a picture")
    (folder / "ghost.png").write_bytes(TINY_EPS)
    code, stderr = in_process("predict", f"--ckpt_path={best_ckpt}", str(folder), cwd=tmp_path)
    assert code == 2
    assert len([line for line in in_process.stdout.splitlines() if ".png" in line]) == 3
    assert "evil\\n\\x1b[2Jname.png" in in_process.stdout and "\x1b" not in in_process.stdout + stderr
    skipped = [line for line in stderr.splitlines() if line.startswith("litquant: skipped")]
    assert len(skipped) == 2 and "ghost.png: not an image file" in skipped[0] and "junk.png" in skipped[1]
    assert "2 of 5 files could not be read" in stderr and "Traceback" not in stderr


def test_errors_are_a_few_lines_naming_the_file_or_option(tmp_path: Path, in_process, best_ckpt: Path) -> None:
    (tmp_path / "bad.yaml").write_text("trainer:\n  max_epochs: [1\n")
    (tmp_path / "taken").write_text("a file")
    evil, marker = tmp_path / "evil.ckpt", tmp_path / "marker"
    import torch
    from test_checkpoints import RunsCode

    torch.save({"state_dict": {}, "hyper_parameters": RunsCode(marker)}, evil)
    code, stderr = in_process("fit", "--config=bad.yaml", cwd=tmp_path)
    assert code == 2 and "litquant: error: --config bad.yaml: not valid YAML" in stderr and "line 3" in stderr
    assert len(stderr.strip().splitlines()) <= 2 and "usage:" not in stderr
    code, stderr = in_process("fit", "--trainer.max_epochs=oops", cwd=tmp_path)  # a bad option: a few lines too
    assert code == 2 and "max_epochs" in stderr and len(stderr.strip().splitlines()) <= 10 and "usage:" not in stderr
    cases = [
        (["quantize", f"--ckpt_path={best_ckpt}", "--method=ptq", "--out=taken"], "--out taken is a file"),
        (["quantize", f"--ckpt_path={best_ckpt}", "--method=ptq", "--out=taken/sub"], "--out taken/sub: cannot"),
        (["demo", "--out=taken"], "--out taken is a file"),
        (["test", f"--ckpt_path={evil}", "--data.test_size=64"], "it holds code"),
    ]
    for args, needle in cases:
        code, stderr = in_process(*args, cwd=tmp_path)
        assert code == 2 and needle in stderr and "Traceback" not in stderr, (args, stderr)
        assert "weights_only" not in stderr
        if args[0] != "test":
            assert not list(tmp_path.glob("*/*")), args  # refused before any work
    assert not marker.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["frobnicate"], "unknown command"),
        (["fit", "--trainer.max_epochs=oops"], "max_epochs"),
        (["quantize", "--ckpt_path=missing.ckpt", "--method=ptq"], "checkpoint not found"),
        (["quantize", "--ckpt_path=missing.ckpt", "--method=fp4"], "unknown --method"),
        (["demo", "--methods=ptq,magic"], "unknown method"),
        (["fit", "--ckpt_path=last"], "--ckpt_path last: no last.ckpt or interrupted.ckpt in runs/mnist"),
        (["test", "--ckpt_path=last"], "run `litquant fit` (without --ckpt_path) first"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path: Path, args: list[str], needle: str, in_process) -> None:
    code, stderr = in_process(*args, cwd=tmp_path)
    assert code != 0
    assert needle in stderr
    assert "Traceback" not in stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_litquant("--help", cwd=tmp_path)
    for command in ("fit", "validate", "test", "predict", "demo", "quantize", "evaluate", "info"):
        assert f"  {command} " in result.stdout


def test_a_given_length_decides_and_print_config_keeps_it(tmp_path: Path, in_process,
                                                                   mnist_dir: Path) -> None:
    """The default length (two epochs) applies to a fit given none: ``--trainer.max_steps`` alone decides."""
    code, stderr = in_process("fit", f"--data.data_dir={mnist_dir}", *TINY, "--trainer.max_steps=12",
                              cwd=tmp_path)
    assert code == 0, stderr
    with open(tmp_path / RUN0 / "metrics_table.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1, 2]  # 12 steps of 4 batches an epoch, past the default two epochs
    assert "max_epochs: null" in (tmp_path / RUN0 / "config.yaml").read_text()
    # a length the one-cycle schedule cannot span is one line saying what to give
    code, stderr = in_process("fit", f"--data.data_dir={mnist_dir}", *TINY, "--trainer.max_time=00:00:00:30",
                              cwd=tmp_path)
    assert code == 2 and "the one-cycle schedule needs the fit's length: give --trainer.max_epochs" in stderr
    # --print_config of the same command writes a file that behaves as the command did
    code, stderr = in_process("fit", f"--data.data_dir={mnist_dir}", *TINY, "--trainer.max_steps=12",
                              "--print_config", cwd=tmp_path)
    assert code == 0 and "max_epochs: null" in in_process.stdout
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "fit.yaml").write_text(in_process.stdout)
    code, stderr = in_process("fit", "--config=fit.yaml", cwd=tmp_path / "again")
    assert code == 0, stderr
    with open(tmp_path / "again" / RUN0 / "metrics_table.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]


def test_predict_runs_an_artifact_as_exported_for_a_few_images_and_compiles_for_many(
        tmp_path: Path, digit_pngs, in_process, tiny_artifacts, monkeypatch: pytest.MonkeyPatch) -> None:
    import litquant.cli.artifact_commands

    folder, _ = digit_pngs
    ptq = str(tiny_artifacts["ptq"])
    runs = {}
    for runner, compile_from in (("auto", 1000), ("eager", 1000), ("compile", 1000), ("auto", 8)):
        monkeypatch.setattr(litquant.cli.artifact_commands, "PREDICT_COMPILE_FROM", compile_from)
        code, stderr = in_process("predict", "--model", ptq, "--runner", runner, str(folder), cwd=tmp_path)
        assert code == 0, stderr
        runs[runner, compile_from] = (in_process.stdout, "compiling int8 model" in stderr)
    assert [compiled for _, compiled in runs.values()] == [False, False, True, True]  # 8 images: auto from 8 on
    rows = [[line.split() for line in stdout.splitlines() if "digit" in line] for stdout, _ in runs.values()]
    assert all([(name, label) for name, label, _ in run] == [(n, lb) for n, lb, _ in rows[0]] for run in rows)
    assert all(float(row[2]) == pytest.approx(float(first[2]), abs=0.02) for run in rows
               for row, first in zip(run, rows[0], strict=True))  # compiled int8 kernels round a little apart


def test_user_error_of_another_module_exits_2_under_python_m(tmp_path: Path) -> None:
    """``python -m litquant.cli`` (what ``run_litquant`` runs) exits as the ``litquant`` script does: a command
    whose module raises ``UserError`` (bench) exits 2 with one line."""
    result = run_litquant("bench", str(tmp_path / "missing.pt2"), "--no_cold_start", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "litquant: error: not found:" in result.stderr and "Traceback" not in result.stderr


def test_help_shows_plain_backticks_and_a_misspelt_option_gets_a_suggestion(tmp_path: Path, in_process) -> None:
    for command in ("fit", "quantize", "demo"):
        assert in_process(command, "--help", cwd=tmp_path)[0] == 0
        assert "``" not in in_process.stdout and "`" in in_process.stdout, command
    code, stderr = in_process("quantize", "--ckpt_path=x.ckpt", "--method=ptq", "--quant.observr=minmax", cwd=tmp_path)
    assert code == 2
    assert stderr.splitlines() == ["litquant quantize: error: unknown option --quant.observr: did you mean "
                                   "--quant.observer?", "(run `litquant quantize --help` for the options)"]
    code, stderr = in_process("fit", "--trainer.max_epochz=3", cwd=tmp_path)
    assert code == 2 and "did you mean --trainer.max_epochs?" in stderr
    assert not (tmp_path / "runs").exists()
