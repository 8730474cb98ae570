"""``litquant bench``: latency, cold start and memory of artifacts and checkpoints, side by side
(:mod:`litquant.apps.bench` measures).

Example::

    litquant bench out/fp32.pt2 out/ptq.pt2 out/onnxruntime.int8.onnx runs/checkpoints/last.ckpt \\
        --batch_sizes 1 256 --threads 1 2 --out bench.json
"""

from __future__ import annotations

import os
from pathlib import Path

from litquant.cli.options import add_runner_argument, command_parser
from litquant.errors import UserError

DESCRIPTION = """Latency, cold start and memory of artifacts and checkpoints, side by side.

Every model runs in this one process, in interleaved rounds (the order rotating each round, so a noisy machine
slows them alike), per batch size and thread count; the table gives p50 and p90 of the single calls and the
spread of the round medians ((max - min) / median). A figure is called unstable, in a line under the table,
when its rounds are over 20% apart, its p90 over twice its p50, or it is over 1.5x slower than the same model
with fewer threads (a steady load on the cores slows every round alike: the spread alone misses it). Cold
start (load + first call) and resident memory are measured for each model in a fresh process of its own, where
they mean what a user sees: the RSS growth from loading and the first call, and the process's peak RSS
(--no_cold_start leaves those columns out)."""

MODEL_SUFFIXES = (".pt2", ".onnx", ".ckpt")


def bench_parser():
    parser = command_parser("litquant bench", DESCRIPTION)
    parser.add_argument("models", nargs="+", metavar="ARTIFACT", help=".pt2 / .onnx artifacts or .ckpt checkpoints")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 256], help="batch sizes")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts, at most the CPUs this process may use (default: 1 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per model and round")
    add_runner_argument(parser, where="in this process")
    parser.add_argument("--out", default=None, help="JSON results (default: runs/bench/bench.<cpu kind>.json, "
                        "beside the other commands' runs)")
    parser.add_argument("--no_cold_start", action="store_true", help="skip the fresh-process cold-start runs")
    return parser


def _check_models(paths: list[str]) -> None:
    for path in paths:
        if Path(path).is_dir():
            raise UserError(f"{path} is a folder, not a model file; give .pt2/.onnx artifacts or .ckpt checkpoints")
        if not Path(path).is_file():
            raise UserError(f"not found: {path} (give .pt2/.onnx artifacts or .ckpt checkpoints)")
        if Path(path).suffix not in MODEL_SUFFIXES:
            raise UserError(f"{path}: unknown kind {Path(path).suffix!r}; expected .pt2, .onnx or .ckpt")


def cmd_bench(argv: list[str]) -> None:
    args = bench_parser().parse_args(list(argv))
    from litquant.apps.bench import BYTES_PER_IMAGE, available_memory

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args.threads = [t for t in (1, 2) if t <= max(cpus, 1)] if args.threads is None else args.threads
    args.batch_sizes, args.threads = list(dict.fromkeys(args.batch_sizes)), list(dict.fromkeys(args.threads))
    _check_models(args.models)
    if min(args.batch_sizes + args.threads + [args.rounds, args.calls]) < 1:
        raise UserError("--batch_sizes, --threads, --rounds and --calls must be positive")
    if max(args.threads) > cpus:  # more threads than CPUs measures contention, not the model
        raise UserError(f"--threads {max(args.threads)}: more than the {cpus} CPUs this process may use; "
                        f"give at most {cpus}")
    available = available_memory()
    if available is not None and max(args.batch_sizes) * BYTES_PER_IMAGE > available:
        raise UserError(f"--batch_sizes {max(args.batch_sizes)}: a batch that size needs about "
                        f"{max(args.batch_sizes) * BYTES_PER_IMAGE / 2**30:.0f} GB, more than the "
                        f"{available / 2**30:.0f} GB of memory available; give at most "
                        f"{available // BYTES_PER_IMAGE}")
    from litquant.cpu import cpu_info

    out = Path(args.out or Path("runs") / "bench" / f"bench.{cpu_info().isa}.json")
    if out.is_dir():  # found now, not after the measurements
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'bench.json'}")
    from litquant.apps.bench import run_bench

    run_bench(args.models, args.batch_sizes, args.threads, args.rounds, args.calls, args.runner, out,
              cold_start=not args.no_cold_start)
