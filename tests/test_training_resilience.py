"""Crash and resume, signals, and two-process DDP on CPU: real ``litquant fit`` subprocesses."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import QUIET, run_litquant, start_litquant, tiny
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
from lightning.pytorch.trainer.states import RunningStage

from litquant.data import EpochShuffleSampler

pytestmark = pytest.mark.slow

# Deterministic tiny runs: the resumed run must match the uninterrupted one.
DETERMINISTIC_TINY = [*tiny(train_size=512), "--data.batch_size=32", *QUIET, "--trainer.deterministic=true",
                      "--seed_everything=7"]
RUN0 = Path("runs") / "mnist" / "version_0"  # the first fit's run folder: logs, and its checkpoints/
# Resumed and uninterrupted runs do the same arithmetic in the same order; allow only float noise.
RESUME_TOLERANCE = 1e-5
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def fit_args(mnist_dir: Path, *extra: str) -> list[str]:
    return ["fit", f"--data.data_dir={mnist_dir}", *DETERMINISTIC_TINY, *extra]


def final_val_metrics(log_dir: Path) -> dict[str, float]:
    with open(log_dir / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val_loss")]
    return {"epoch": int(rows[-1]["epoch"]), "val_loss": float(rows[-1]["val_loss"]),
            "val_acc": float(rows[-1]["val_acc"])}


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"fit ended (code {process.returncode}) before {path.name} appeared")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def test_sigkill_mid_fit_resumes_from_last_and_matches_an_uninterrupted_run(tmp_path: Path, mnist_dir: Path) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    for folder in (reference, crashed):
        folder.mkdir()
    run_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=3"), cwd=reference, **ONE_THREAD)

    process = start_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=3"), cwd=crashed, **ONE_THREAD)
    wait_for(crashed / RUN0 / "checkpoints" / "last.ckpt", process)  # written at the end of epoch 0
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    run_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=3", "--ckpt_path=last"), cwd=crashed, **ONE_THREAD)
    expected = final_val_metrics(reference / "runs" / "mnist" / "version_0")
    got = final_val_metrics(crashed / "runs" / "mnist" / "version_1")
    assert got["epoch"] == expected["epoch"] == 2
    assert got["val_loss"] == pytest.approx(expected["val_loss"], abs=RESUME_TOLERANCE)
    assert got["val_acc"] == pytest.approx(expected["val_acc"], abs=RESUME_TOLERANCE)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_save_a_checkpoint_before_exiting(tmp_path: Path, mnist_dir: Path, sig) -> None:
    marker = tmp_path / RUN0 / "metrics.csv"
    # Ctrl-C reaches a user's fit with SIGINT's default action, also when this test run ignores SIGINT
    process = start_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=50"), cwd=tmp_path, default_sigint=True,
                             stderr=subprocess.PIPE, **ONE_THREAD)
    wait_for(tmp_path / RUN0 / "checkpoints" / "last.ckpt", process)
    wait_for(marker, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + sig  # 130 for Ctrl-C, 143 for SIGTERM
    assert "Traceback" not in stderr
    assert "resumes with --ckpt_path last" in stderr
    assert (tmp_path / RUN0 / "checkpoints" / "interrupted.ckpt").stat().st_size > 0


def test_under_ddp_lightning_splits_the_training_shuffle_without_overlap(make_datamodule) -> None:
    loader = make_datamodule(train_size=101).train_dataloader()
    shards = []
    for rank in range(2):  # what Lightning injects in each of two processes
        sampler = _get_distributed_sampler(loader, shuffle=True, overfit_batches=0, mode=RunningStage.TRAINING,
                                           num_replicas=2, rank=rank)
        sampler.set_epoch(1)
        shards.append(list(sampler))
    assert len(shards[0]) == len(shards[1]) == 51  # 101 padded to 102 by repeating one index
    assert len(set(shards[0]) & set(shards[1])) <= 1
    assert set(shards[0]) | set(shards[1]) == set(range(101))


def test_shuffle_order_depends_only_on_seed_and_epoch() -> None:
    first, second = EpochShuffleSampler(range(50), seed=1), EpochShuffleSampler(range(50), seed=1)
    first.set_epoch(2)
    second.set_epoch(2)
    assert list(first) == list(second)
    second.set_epoch(3)
    assert list(first) != list(second)


def test_ddp_on_two_cpu_processes_trains_checkpoints_and_logs_once(tmp_path: Path, mnist_dir: Path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    # fp32 on every CPU: the test is about DDP (processes, logging, checkpoints, the same global batch), and the
    # val_acc comparison below holds for fp32 arithmetic, where the two runs differ only in summation order. Under
    # bf16-mixed (chosen on CPUs with native bf16) the two runs' roundings drift apart over 32 steps by more than
    # the comparison allows (0.758 against 0.859 on an AMX CPU), which says nothing about DDP.
    fp32 = "--trainer.precision=32-true"
    run_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=2", fp32), cwd=single, **ONE_THREAD)
    # Two processes with half the per-process batch: the same global batch and number of steps.
    result = run_litquant(*fit_args(mnist_dir, "--trainer.max_epochs=2", "--trainer.strategy=ddp", fp32,
                                    "--trainer.devices=2", "--trainer.accelerator=cpu", "--data.batch_size=16"),
                          cwd=tmp_path, **ONE_THREAD)
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    versions = sorted(p.name for p in (tmp_path / "runs" / "mnist").iterdir())
    assert versions == ["version_0"]  # one logger, on rank 0
    assert result.stdout.count("best val_acc:") == 1, result.stdout  # printed by rank 0 only
    checkpoints = sorted(p.name for p in (tmp_path / RUN0 / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 5, checkpoints  # 2 by val_loss + 2 by val_acc + last.ckpt, each written once
    distributed = final_val_metrics(tmp_path / "runs" / "mnist" / "version_0")
    one_process = final_val_metrics(single / "runs" / "mnist" / "version_0")
    # Two epochs on 512 samples: val_acc moves by several points between seeds, so compare within 0.1.
    assert distributed["val_acc"] == pytest.approx(one_process["val_acc"], abs=0.1)
