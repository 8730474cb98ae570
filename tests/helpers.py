"""What many tests share: the tiny-data command-line options, and running (or starting) ``litquant`` or Python
in a fresh process with the test environment (the ``$LITQUANT_DATA``/``$LITQUANT_MIRRORS`` the conftest sets, library
warnings off unless asked for)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Split sizes of a tiny run on real MNIST.
TINY_SIZES = {"train_size": 256, "val_size": 256, "test_size": 256}


def tiny(prefix: str = "--data.", **sizes: int) -> list[str]:
    """The tiny split sizes as options (``--data.train_size=256``...; ``prefix="--"`` for the example and
    benchmark scripts), with ``sizes`` overriding some; a size of 0 leaves that option out."""
    return [f"{prefix}{name}={value}" for name, value in {**TINY_SIZES, **sizes}.items() if value]


#: A Trainer that prints no progress bar or model summary.
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
#: A tiny, quiet run of a ``litquant`` command: tiny splits, batch 64, no progress bar or model summary.
TINY = [*tiny(), "--data.batch_size=64", *QUIET]


def command_env(cwd: Path | None = None, warnings: str = "ignore", **extra: str) -> dict[str, str]:
    """This process's environment for a child: ``$PYTHONWARNINGS`` set to ``warnings`` ("" shows what a user
    sees), with ``cwd``, a private empty ``$LITQUANT_DATA`` under it, and ``extra`` variables."""
    env = {**os.environ, "PYTHONWARNINGS": warnings, **extra}
    if cwd is not None:
        env["LITQUANT_DATA"] = str(Path(cwd) / "no-cache")
    return env


def _restore_default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _child_options(cwd: Path | None, env: Mapping[str, str] | None, default_sigint: bool,
                   env_options: Mapping[str, str]) -> dict[str, Any]:
    """What :func:`run_python` and :func:`start_python` give ``subprocess``: the folder, the environment, and,
    with ``default_sigint``, SIGINT's default action in the child. (A test run started as a background job of
    a non-interactive shell ignores SIGINT and a child inherits that; Ctrl-C reaches a user's command with its
    default action.)"""
    return {"cwd": cwd, "env": dict(env) if env is not None else command_env(cwd, **env_options),
            "preexec_fn": _restore_default_sigint if default_sigint else None}


def run_python(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 600,
               check: bool = True, default_sigint: bool = False, **env_options) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process (``env``: the whole environment, else :func:`command_env` of ``cwd``
    and ``env_options``). ``check``: fail the test, with the end of stderr, on a non-zero exit (``False`` where
    the exit code is what the test checks). ``default_sigint``: see :func:`_child_options`."""
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                            **_child_options(cwd, env, default_sigint, env_options))
    if check and result.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def run_litquant(*args: str, **options) -> subprocess.CompletedProcess:
    """``litquant ARGS`` in a fresh process; ``options`` as for :func:`run_python`."""
    return run_python("-m", "litquant.cli", *args, **options)


def start_litquant(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                   default_sigint: bool = False, stdout: int = subprocess.DEVNULL, stderr: int = subprocess.DEVNULL,
                   process_group: bool = False, **env_options) -> subprocess.Popen:
    """``litquant ARGS`` started in a fresh process, not waited for (to signal or kill it); output discarded,
    but ``stdout=subprocess.PIPE`` or ``stderr=subprocess.PIPE`` keeps it (text); ``process_group``: in a
    process group of its own, with the processes it starts (to signal them all, as a terminal's Ctrl-C does);
    other options as for :func:`run_python`."""
    return subprocess.Popen([sys.executable, "-m", "litquant.cli", *args], stdout=stdout, stderr=stderr,
                            text=True, process_group=0 if process_group else None,
                            **_child_options(cwd, env, default_sigint, env_options))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: What a line of library noise looks like: warnings (with or without a file path), tips, kernels that did not
#: load, notes on hardware that is not there.
NOISE = re.compile(r"[Ww]arning|💡|\bTip\b|Failed to load|site-packages|available: False|No complete tensor|"
                   r"not supported by|weights_only|deprecated|Skipping")
#: Lines that match :data:`NOISE` and are still for the user: ``ModelCheckpoint``'s arguments in the catalog of
#: ``litquant info callbacks``.
ACTIONABLE: tuple[re.Pattern[str], ...] = (re.compile(r"\bsave_weights_only=(False|True)"),)


def unlisted_noise(output: str) -> list[str]:
    """The lines of ``output`` that look like library noise and are not listed as actionable."""
    return [line for line in output.splitlines()
            if NOISE.search(line) and not any(pattern.search(line) for pattern in ACTIONABLE)]
