"""``litquant`` from start to exit: what a user waits for before a command does anything.

Each command runs ``--rounds`` times in a fresh process (rounds interleaved); the table gives the median and the
spread of the wall time, and the heavy libraries the command imported (``-X importtime``, one more run each):
``--version``, ``--help``, and ``predict`` of one PNG with an ``.onnx`` and with a ``.pt2`` (PT2E int8, run
eager: what ``--runner auto`` picks for one image). The models are quantized here from ``--ckpt_path`` or from a
model trained for one epoch on ``--train_size`` samples. Results go to ``results/startup.<cpu kind>.json`` and
``.md``.

Example::

    python benchmarks/startup.py --data_dir ../shared/data --rounds 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from environment import environment, result_name, save_results
from harness import add_data_arguments, alternate, datamodule, markdown_table, median, write_markdown
from int8_runners import make_artifacts
from PIL import Image

NAME = "startup"
#: The libraries whose import decides a command's start-up, in the order the table names them.
HEAVY = ("torch", "torchao", "lightning", "onnxruntime", "jsonargparse")
#: Start-to-exit targets (seconds) of issue 23, per command.
TARGETS = {"--version": 0.3, "--help": 0.5, "predict .onnx": 0.6, "predict .pt2": 2.5}


def run_litquant(args: list[str]) -> dict:
    """Wall seconds of one ``litquant ARGS`` process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "litquant", *args], env=env, check=True, capture_output=True)
    return {"seconds": time.perf_counter() - start}


def imported(args: list[str]) -> list[str]:
    """Which of :data:`HEAVY` ``litquant ARGS`` imports (from ``python -X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "litquant", *args], check=True,
                          capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=2048, val_size=512, test_size=256)
    parser.add_argument("--ckpt_path", default=None, help="fp32 checkpoint (default: train one here)")
    parser.add_argument("--calibration_batches", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shared", action="store_true", help="say in the results that other work shared the machine")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="litquant-startup-") as scratch_dir:
        scratch = Path(scratch_dir)
        pt2, onnx = make_artifacts(args, scratch / "artifacts")
        image = scratch / "digit.png"
        Image.fromarray(datamodule(args).split("test").images[0].reshape(28, 28).numpy()).save(image)
        data = [f"--data.data_dir={args.data_dir}"] if args.data_dir else []
        commands = {"--version": ["--version"], "--help": ["--help"],
                    "predict .onnx": ["predict", "--model", str(onnx), *data, str(image)],
                    "predict .pt2": ["predict", "--model", str(pt2), *data, str(image)]}
        for command in commands.values():  # once untimed: the files in the page cache, as for a user's second run
            run_litquant(command)
        results = alternate({name: lambda c=command: run_litquant(c) for name, command in commands.items()},
                            args.rounds)
        libraries = {name: imported(command) for name, command in commands.items()}
    rows = []
    for name, runs in results.items():
        seconds = [run["seconds"] for run in runs]
        rows.append({"command": name, "median_s": median(seconds), "spread_s": max(seconds) - min(seconds),
                     "target_s": TARGETS[name], "met": median(seconds) <= TARGETS[name],
                     "imports": libraries[name]})
    env = environment()
    save_results(args.name, {"environment": env, "rows": rows, "rounds": args.rounds, "shared_machine": args.shared})
    body = markdown_table(["command", "median s", "spread s", "target s", "met", "imports"],
                          [[r["command"], r["median_s"], r["spread_s"], r["target_s"], "yes" if r["met"] else "no",
                            ", ".join(r["imports"]) or "none of them"] for r in rows])
    body += (f"\nWall time of a whole `litquant COMMAND` process (`python -m litquant`), median of {args.rounds} "
             "interleaved rounds, after one untimed run of each. Imports: which of "
             f"{', '.join(HEAVY)} the command loaded.\n")
    if args.shared:
        body += ("\nMeasured on a machine other work was using at the same time: the times are higher, and spread "
                 "wider, than on an idle one.\n")
    write_markdown(args.name, "litquant: start to exit", body, env)
    print(body)


if __name__ == "__main__":
    main()
