"""``litquant bench``: latency, cold start and memory of artifacts and checkpoints, side by side.

Every model runs in this one process, in interleaved rounds (the order rotating each round, so a noisy
machine slows them alike), per batch size and thread count; the table gives p50 and p90 of the single
calls and the spread of the round medians ((max - min) / median). Cold start (load + first call) and
resident memory are measured for each model in a fresh process of its own, where they mean what a user
sees: the RSS growth from loading and the first call, and the process's peak RSS.

Example::

    litquant bench out/fp32.pt2 out/ptq.pt2 out/onnxruntime.int8.onnx runs/checkpoints/last.ckpt \\
        --batch_sizes 1 256 --threads 1 2 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from litquant.artifacts.loading import RUNNERS, load_model
from litquant.evaluation import time_calls
from litquant.fresh_process import json_lines

__all__ = ["environment", "main", "measure"]

Model = Callable[[torch.Tensor], torch.Tensor]


def environment() -> dict[str, Any]:
    """The CPU (kind and flags), threads, library versions, Python and the command line."""
    import platform
    import shlex

    from litquant.artifacts.description import versions
    from litquant.cpu import cpu_info

    return {"cpu": {**cpu_info().as_dict(), "cores": os.cpu_count()}, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "versions": versions(),
            "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}


#: Memory one image of a batch may take in flight, with room to spare: in the fp32 model the outputs of conv1
#: (32x26x26) and conv2 (64x24x24) are alive together, (21,632 + 36,864) x 4 bytes = 229 KB an image.
BYTES_PER_IMAGE = 512 * 1024


def _proc_kb(file: str, key: str) -> int | None:
    """The ``key: N kB`` entry of a ``/proc`` file (``/proc/meminfo``, ``/proc/self/status``) in KB; ``None``
    where it cannot be read."""
    try:
        for line in Path(file).read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, ``None`` where it cannot be read."""
    kb = _proc_kb("/proc/meminfo", "MemAvailable")
    return None if kb is None else kb * 1024


def _rss_mb() -> float:
    """This process's current resident memory (MB), from ``/proc/self/statm`` (peak RSS where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    """This process's peak resident memory (MB): ``VmHWM`` of ``/proc/self/status``. ``ru_maxrss`` only where
    that is missing: Linux carries it over ``execve`` from the forked parent, so a fresh process started by a
    big one would report the parent's peak."""
    kb = _proc_kb("/proc/self/status", "VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _cold_start(path: str, batch_size: int, threads: int, runner: str) -> dict[str, float]:
    """Run in a fresh process: load ``path``, call it once; times and memory."""
    from litquant import ignore_library_internal_warnings
    from litquant.checkpoints import register_safe_globals

    ignore_library_internal_warnings()
    register_safe_globals()
    torch.set_num_threads(threads)
    before = _rss_mb()
    start = time.perf_counter()
    model = load_model(path, runner, threads, [batch_size], progress=False)
    loaded = time.perf_counter()
    model(torch.zeros(batch_size, 1, 28, 28))
    done = time.perf_counter()
    return {"load_s": loaded - start, "first_call_s": done - loaded, "cold_start_s": done - start,
            "rss_growth_mb": _rss_mb() - before,
            "peak_rss_mb": _peak_rss_mb()}


def cold_start_in_fresh_process(path: str, batch_size: int, threads: int, runner: str = "compile",
                                timeout: float = 600) -> dict[str, Any]:
    """Load ``path`` and call it once at ``batch_size`` in a fresh process at ``threads`` threads: ``load_s``,
    ``first_call_s``, ``cold_start_s``, ``rss_growth_mb``, ``peak_rss_mb``; ``{"error": ...}`` when it failed.

    Raises:
        subprocess.TimeoutExpired: the process ran past ``timeout`` seconds.
    """
    command = [sys.executable, "-m", "litquant.apps.bench", "--cold_start", str(path), "--batch_sizes",
               str(batch_size), "--threads", str(threads), "--runner", runner]
    results, code, tail = json_lines(command, timeout)
    if code or not results:
        return {"error": f"exit {code}: {tail}"}
    return results[-1]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(models: dict[str, dict[int, Model]], batch_sizes: Sequence[int], threads: Sequence[int],
            rounds: int = 5, calls: int = 20) -> list[dict[str, Any]]:
    """Per batch size and thread count, interleaved rounds of ``calls`` timed calls of every model (after one
    untimed call). ``models[name][threads]`` is the model to run at that thread count. One row per model and
    setting, with p50/p90 of the calls (ms) and the spread of the round medians."""
    rows = []
    for batch_size in batch_sizes:
        x = torch.randn(batch_size, 1, 28, 28)
        for thread_count in threads:
            torch.set_num_threads(thread_count)
            names = list(models)
            calls_ms: dict[str, list[float]] = {name: [] for name in names}
            round_medians: dict[str, list[float]] = {name: [] for name in names}
            for name in names:
                models[name][thread_count](x)  # warm-up (compiles where the model compiles)
            for round_index in range(rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    timings = time_calls(models[name][thread_count], x, calls)
                    calls_ms[name] += timings
                    round_medians[name].append(statistics.median(timings))
            for name in names:
                p50 = statistics.median(calls_ms[name])
                spread = (max(round_medians[name]) - min(round_medians[name])) / p50
                rows.append({"model": name, "batch_size": batch_size, "threads": thread_count, "p50_ms": p50,
                             "p90_ms": _percentile(calls_ms[name], 0.9), "spread": spread,
                             "samples_per_s": batch_size / p50 * 1000, "rounds": rounds, "calls": calls})
    return rows


def format_table(rows: list[dict[str, Any]], cold: dict[str, dict[str, Any]]) -> str:
    header = (f"{'model':<28} {'batch':>5} {'thr':>3} {'p50 ms':>9} {'p90 ms':>9} {'spread':>7} "
              f"{'vs best':>7}  {'cold s':>7} {'+RSS MB':>8}")
    lines = [header, "-" * len(header)]
    for row in rows:
        best = min(r["p50_ms"] for r in rows if (r["batch_size"], r["threads"]) == (row["batch_size"], row["threads"]))
        start = {"cold_start_s": float("nan"), "rss_growth_mb": float("nan"), **cold.get(row["model"], {})}
        lines.append(f"{row['model'][-28:]:<28} {row['batch_size']:>5} {row['threads']:>3} {row['p50_ms']:>9.4g} "
                     f"{row['p90_ms']:>9.4g} {row['spread']:>6.1%} {row['p50_ms'] / best:>6.2f}x  "
                     f"{start['cold_start_s']:>7.3g} {start['rss_growth_mb']:>8.4g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="litquant bench", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("models", nargs="+", metavar="ARTIFACT", help=".pt2 / .onnx artifacts or .ckpt checkpoints")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 256], help="batch sizes (default 1 256)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts, at most the CPUs this process may use (default 1 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per model and round (default 20)")
    parser.add_argument("--runner", choices=RUNNERS, default="compile",
                        help=".pt2 files: compile (torch.compile in this process, default), aot (AOTInductor packages "
                             "for each of --batch_sizes, built once and cached under $LITQUANT_CACHE, else "
                             "~/.cache/litquant), eager (the exported graph as is)")
    parser.add_argument("--out", default=None, help="JSON results (default: runs/bench/bench.<cpu kind>.json, "
                        "beside the other commands' runs)")
    parser.add_argument("--no_cold_start", action="store_true", help="skip the fresh-process cold-start runs")
    parser.add_argument("--cold_start", action="store_true", help=argparse.SUPPRESS)  # the fresh process's side
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    args = parser.parse_args(argv)
    if args.cold_start:
        print(json.dumps(_cold_start(args.models[0], args.batch_sizes[0], args.threads[0], args.runner)))
        return 0
    from litquant.cpu import cpu_info
    from litquant.errors import UserError
    from litquant.files import write_json

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args.threads = [t for t in (1, 2) if t <= max(cpus, 1)] if args.threads is None else args.threads
    args.batch_sizes, args.threads = list(dict.fromkeys(args.batch_sizes)), list(dict.fromkeys(args.threads))
    for path in args.models:
        if Path(path).is_dir():
            raise UserError(f"{path} is a folder, not a model file; give .pt2/.onnx artifacts or .ckpt checkpoints")
        if not Path(path).is_file():
            raise UserError(f"not found: {path} (give .pt2/.onnx artifacts or .ckpt checkpoints)")
        if Path(path).suffix not in (".pt2", ".onnx", ".ckpt"):
            raise UserError(f"{path}: unknown kind {Path(path).suffix!r}; expected .pt2, .onnx or .ckpt")
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
    out = Path(args.out or Path("runs") / "bench" / f"bench.{cpu_info().isa}.json")
    if out.is_dir():  # found now, not after the measurements
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'bench.json'}")
    previous_threads = torch.get_num_threads()
    models: dict[str, dict[int, Model]] = {}
    for path in args.models:
        if path.endswith(".onnx"):  # ONNX Runtime fixes its thread count when loading
            models[path] = {t: load_model(path, threads=t, progress=False) for t in args.threads}
        else:
            model = load_model(path, args.runner, batch_sizes=args.batch_sizes, progress=False)
            if args.runner == "aot" and path.endswith(".pt2"):  # build (or check) the cached packages now, so
                for size in args.batch_sizes:                  # that cold start measures a cached start
                    model(torch.zeros(size, 1, 28, 28))
            models[path] = dict.fromkeys(args.threads, model)
    cold = {} if args.no_cold_start else {path: cold_start_in_fresh_process(path, args.batch_sizes[0],
                                                                            args.threads[0], args.runner)
                                          for path in args.models}
    try:
        rows = measure(models, args.batch_sizes, args.threads, args.rounds, args.calls)
    finally:
        torch.set_num_threads(previous_threads)
    print(format_table(rows, cold))
    write_json(out, {"environment": environment(), "runner": args.runner, "results": rows,
                     "cold_start": {"batch_size": args.batch_sizes[0], "threads": args.threads[0], "models": cold}})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
