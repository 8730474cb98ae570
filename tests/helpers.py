"""What many tests share: the tiny-data command-line options, and running ``litquant`` or Python in a fresh
process with the test environment (the ``$LITQUANT_DATA``/``$LITQUANT_MIRRORS`` the conftest sets, library
warnings off unless asked for)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: Split sizes of a tiny run on real MNIST.
TINY_SIZES = {"train_size": 256, "val_size": 256, "test_size": 256}


def tiny(prefix: str = "--data.", **sizes: int) -> list[str]:
    """The tiny split sizes as options (``--data.train_size=256``...; ``prefix="--"`` for the example and
    benchmark scripts), with ``sizes`` overriding some; a size of 0 leaves that option out."""
    return [f"{prefix}{name}={value}" for name, value in {**TINY_SIZES, **sizes}.items() if value]


#: A tiny, quiet run of a ``litquant`` command: tiny splits, batch 64, no progress bar or model summary.
TINY = [*tiny(), "--data.batch_size=64", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false"]


def command_env(cwd: Path | None = None, warnings: str = "ignore", **extra: str) -> dict[str, str]:
    """This process's environment for a child: ``$PYTHONWARNINGS`` set to ``warnings`` ("" shows what a user
    sees), with ``cwd``, a private empty ``$LITQUANT_DATA`` under it, and ``extra`` variables."""
    env = {**os.environ, "PYTHONWARNINGS": warnings, **extra}
    if cwd is not None:
        env["LITQUANT_DATA"] = str(Path(cwd) / "no-cache")
    return env


def run_python(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 600,
               check: bool = True, **env_options) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process (``env``: the whole environment, else :func:`command_env` of ``cwd``
    and ``env_options``). ``check``: fail the test, with the end of stderr, on a non-zero exit (``False`` where
    the exit code is what the test checks)."""
    env = dict(env) if env is not None else command_env(cwd, **env_options)
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def run_litquant(*args: str, **options) -> subprocess.CompletedProcess:
    """``litquant ARGS`` in a fresh process; ``options`` as for :func:`run_python`."""
    return run_python("-m", "litquant.cli", *args, **options)
