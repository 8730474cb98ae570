"""Load artifacts in a fresh Python process, as a user's program would, and measure them there: the proof
that an artifact needs nothing but its file. :func:`check_all_in_fresh_process` runs
``python -m litquant.fresh_process ARTIFACT...``, which prints one JSON line per artifact.

Example::

    from litquant.fresh_process import check_in_fresh_process

    result = check_in_fresh_process("out/ptq.pt2", data_dir="~/data")   # {"ok": True, "accuracy": 0.98, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from litquant.artifacts.loading import load_artifact
from litquant.evaluation import evaluate

__all__ = ["check_all_in_fresh_process", "check_in_fresh_process", "data_dir_for_child", "json_lines", "main"]


def json_lines(command: Sequence[str], timeout: float | None = None) -> tuple[list[Any], int, str]:
    """Run ``command`` (a fresh Python process) and read the JSON objects it printed, one a line (other lines are
    not read). Returns the objects, the exit code, and the last line of its stderr (``no output``), which says why
    when it failed.

    Raises:
        subprocess.TimeoutExpired: the process ran past ``timeout`` seconds.
    """
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return results, done.returncode, (done.stderr.strip().splitlines() or ["no output"])[-1]


def data_dir_for_child(datamodule: Any) -> str | None:
    """The ``data_dir`` a fresh process checking ``datamodule``'s models is given: the folder only when one was
    given to it; ``None`` (the default folder) otherwise, which keeps the offline fallback the parent may have
    used when nothing is found there."""
    return str(datamodule.data_dir) if datamodule.data_dir_given else None


def check_in_fresh_process(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                           dataset: str = "mnist", batches: int = 2, batch_size: int = 256, compile: bool = False,
                           timeout: float = 600.0) -> dict[str, Any]:
    """Load ``path`` in a new Python process (``python -m litquant.fresh_process``) and evaluate ``batches`` test
    batches there. Returns ``{"ok": bool, "accuracy": float | None, "samples": int, "error": str | None}``."""
    return check_all_in_fresh_process([path], data_dir, dataset=dataset, batches=batches, batch_size=batch_size,
                                      compile=compile, timeout=timeout)[0]


def check_all_in_fresh_process(paths: Sequence[str | os.PathLike], data_dir: str | os.PathLike | None = None, *,
                               dataset: str = "mnist", batches: int = 2, batch_size: int = 256,
                               compile: bool = False, timeout: float = 600.0) -> list[dict[str, Any]]:
    """:func:`check_in_fresh_process` for several artifacts in one new process (each loaded from its file
    alone; one failing does not stop the others). One result per path, in order."""
    command = [sys.executable, "-m", "litquant.fresh_process", *map(str, paths), "--dataset", dataset,
               "--batches", str(batches), "--batch_size", str(batch_size)]
    if data_dir is not None:
        command += ["--data_dir", str(data_dir)]
    if compile:
        command.append("--compile")

    def failed(error: str) -> list[dict[str, Any]]:
        return [{"artifact": str(p), "ok": False, "accuracy": None, "samples": 0, "error": error} for p in paths]

    try:
        results, code, tail = json_lines(command, timeout)
    except subprocess.TimeoutExpired:
        return failed(f"timed out after {timeout:.0f} s")
    if len(results) != len(paths):
        return failed(f"exit {code}: {tail}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Load each artifact, evaluate it on a few test batches, print one JSON line per artifact."""
    parser = argparse.ArgumentParser(prog="python -m litquant.fresh_process",
                                     description="Load artifacts and print their accuracy on a few test batches.")
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    from litquant.data import MNISTDataModule

    datamodule = MNISTDataModule(data_dir=args.data_dir, dataset=args.dataset,
                                 test_size=args.batches * args.batch_size)
    samples = len(datamodule.split("test"))
    failures = 0
    for artifact in args.artifacts:
        try:
            model = load_artifact(artifact, compile=args.compile)
            accuracy = evaluate(model, datamodule, "test", args.batch_size, args.batches)
            result = {"artifact": artifact, "ok": True, "accuracy": accuracy, "samples": samples, "error": None}
        except Exception as err:  # noqa: BLE001 - reported per artifact, the others still run
            failures += 1
            result = {"artifact": artifact, "ok": False, "accuracy": None, "samples": 0,
                      "error": f"{type(err).__name__}: {err}".splitlines()[0]}
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
