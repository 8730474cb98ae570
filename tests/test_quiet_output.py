"""Every line a command prints is something its user can act on: each everyday ``litquant`` command runs as a
real process on tiny real data, with Python's warnings shown as a user's terminal shows them, and fails on any
line that looks like a library's warning, hint or advertisement unless it is listed here as actionable.
(``tests/test_examples.py`` checks the examples' output the same way, with ``helpers.unlisted_noise``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY, run_litquant, unlisted_noise


def test_the_noise_pattern_catches_what_users_reported() -> None:
    reported = ["Failed to load /x/site-packages/torchao/_C_mxfp8.so: Could not load this library",
                "/x/site-packages/lightning/pytorch/loops/fit_loop.py:317: PossibleUserWarning: The number of",
                "💡 Tip: For seamless cloud uploads and versioning, try installing [litmodels]",
                "GPU available: False, used: False", "torchvision is not installed. Skipping",
                "W1205 12:41:44 torch/utils/_pytree.py:630] <enum 'KernelPreference'> ... register_constant() on "
                "Enum subclasses is deprecated"]
    assert unlisted_noise("\n".join(reported)) == reported
    assert unlisted_noise("precision 32-true: CPU ... (--trainer.precision overrides)\nSeed set to 42") == []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quiet")


COMMANDS = {
    "fit": ["fit", *TINY],
    "test": ["test", "--ckpt_path=last", *TINY],
    "predict": ["predict", "--ckpt_path=last", *TINY],
    "quantize": ["quantize", "--ckpt_path=last", "--method=ptq", "--out=q", "--quant.calibration_batches=1",
                 "--quant.accuracy_batches=1"],
    "evaluate": ["evaluate", "q/ptq.pt2"],
    "describe": ["describe", "q/ptq.pt2"],
    "info": ["info", "loggers"],
}


@pytest.mark.parametrize("name", list(COMMANDS))  # in this order: each uses what the ones before wrote
def test_a_command_prints_nothing_its_user_cannot_act_on(name: str, workdir: Path, mnist_dir: Path) -> None:
    data = [f"--data.data_dir={mnist_dir}"] if name == "fit" else []
    result = run_litquant(*COMMANDS[name], *data, cwd=workdir, warnings="")
    assert unlisted_noise(result.stdout + result.stderr) == []
