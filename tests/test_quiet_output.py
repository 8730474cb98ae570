"""Every line a command prints is something its user can act on: every ``litquant`` command runs as a real
process on tiny real data (``serve`` until it is stopped with Ctrl-C or SIGTERM), with Python's warnings shown as
a user's terminal shows them, and fails on any line that looks like a library's warning, hint or advertisement
unless it is listed as actionable (``helpers.ACTIONABLE``). (``tests/test_examples.py`` checks every example's
output the same way, with ``helpers.unlisted_noise``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import TINY, free_port, run_litquant, start_litquant, unlisted_noise
from PIL import Image

from litquant.cli import COMMANDS as CLI_COMMANDS
from litquant.cli import LIGHTNING_COMMANDS


def test_the_noise_pattern_catches_what_users_reported() -> None:
    reported = ["Failed to load /x/site-packages/torchao/_C_mxfp8.so: Could not load this library",
                "/x/site-packages/lightning/pytorch/loops/fit_loop.py:317: PossibleUserWarning: The number of",
                "💡 Tip: For seamless cloud uploads and versioning, try installing [litmodels]",
                "GPU available: False, used: False", "torchvision is not installed. Skipping",
                "W1205 12:41:44 torch/utils/_pytree.py:630] <enum 'KernelPreference'> ... register_constant() on "
                "Enum subclasses is deprecated",
                "litquant: warning: UserWarning: The input of maxpool2d is not quantized, but the output is ...",
                "/usr/lib/python3.11/multiprocessing/resource_tracker.py:254: UserWarning: resource_tracker: There "
                "appear to be 1 leaked semaphore objects to clean up at shutdown"]
    assert unlisted_noise("\n".join(reported)) == reported
    assert unlisted_noise("precision 32-true: CPU ... (--trainer.precision overrides)\nSeed set to 42") == []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """The commands' folder, with two real test digits in ``digits/`` for ``predict IMAGES``."""
    from litquant.data import read_idx

    folder = tmp_path_factory.mktemp("quiet")
    (folder / "digits").mkdir()
    for index, image in enumerate(read_idx(mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:2]):
        Image.fromarray(image).save(folder / "digits" / f"{index}.png")
    return folder


QUANTIZE = ["quantize", "--ckpt_path=last", "--quant.calibration_batches=1", "--quant.accuracy_batches=1"]
#: Each command's run, in this order: each uses what the ones before wrote (``serve`` is run by its own test).
COMMANDS = {
    "fit": ["fit", *TINY],
    "validate": ["validate", "--ckpt_path=last", *TINY],
    "test": ["test", "--ckpt_path=last", *TINY],
    "predict": ["predict", "--ckpt_path=last", *TINY],
    "predict images": ["predict", "--ckpt_path=last", "digits"],
    "quantize": [*QUANTIZE, "--method=ptq", "--out=q"],
    # torchao's 1,500-character warning on the max-pool after a layer left in fp32, which --method auto hits
    "quantize fp32_layers": [*QUANTIZE, "--method=ptq", "--quant.fp32_layers=[conv2]", "--out=q-fp32-layers"],
    "quantize auto": [*QUANTIZE, "--method=auto", "--max_drop=100", "--out=q-auto"],
    "evaluate": ["evaluate", "q/ptq.pt2"],
    "describe": ["describe", "q/ptq.pt2"],
    "inspect": ["inspect", "q/ptq.pt2", "--ckpt_path=last", "--batches=1", "--out=inspect"],
    "bench": ["bench", "q/ptq.pt2", "--batch_sizes", "1", "--threads", "1", "--rounds=1", "--calls=2"],
    "info callbacks": ["info", "callbacks"],
    "info loggers": ["info", "loggers"],
    "demo": ["demo", "--out=demo", "--methods=ptq", "--trainer.max_epochs=1", *TINY],
}
#: The commands that read the MNIST folder from the command line (the others from the checkpoint).
GIVEN_DATA = ("fit", "demo")


def test_every_command_is_run() -> None:
    run = {argv[0] for argv in COMMANDS.values()} | {"serve"}
    assert run == set(CLI_COMMANDS) | set(LIGHTNING_COMMANDS)


#: The runs of a minute or more.
SLOW = ("quantize auto", "demo")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
                                  for name in COMMANDS])
def test_a_command_prints_nothing_its_user_cannot_act_on(name: str, workdir: Path, mnist_dir: Path) -> None:
    data = [f"--data.data_dir={mnist_dir}"] if name in GIVEN_DATA else []
    result = run_litquant(*COMMANDS[name], *data, cwd=workdir, warnings="", timeout=900)
    assert unlisted_noise(result.stdout + result.stderr) == []


def _wait_until_healthy(port: int, process: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited early:\n{process.communicate()[1][-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"serve not ready in {timeout_s} s")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_nothing_its_user_cannot_act_on_until_it_has_stopped(stop: signal.Signals, workers: int,
                                                                          workdir: Path) -> None:
    """From the start to the last line after Ctrl-C or SIGTERM, the processes it started (LitServe's workers,
    multiprocessing's resource tracker) included: their stderr is the command's."""
    checkpoint = next(workdir.glob("runs/mnist/version_*/checkpoints/last.ckpt"))
    port = free_port()
    process = start_litquant("serve", "q/ptq.pt2", f"fp32={checkpoint}", f"--port={port}", f"--workers={workers}",
                             cwd=workdir, warnings="", default_sigint=True, process_group=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_until_healthy(port, process)
        if stop == signal.SIGINT:
            os.killpg(process.pid, stop)  # Ctrl-C: the terminal signals every process of the command
        else:
            process.send_signal(stop)  # `kill PID`
        stdout, stderr = process.communicate(timeout=120)  # until every process holding its stderr has ended
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0 and "litquant serve: stopped" in stderr, stderr[-3000:]
    assert unlisted_noise(stdout + stderr) == [], stderr[-4000:]
