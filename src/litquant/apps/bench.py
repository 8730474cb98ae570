"""What ``litquant bench`` measures: latency of models side by side in interleaved rounds, and each one's cold start
and memory in a fresh process (the command, its options and what the numbers mean: :mod:`litquant.cli.bench`)."""

from __future__ import annotations

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

from litquant.artifacts.loading import load_model
from litquant.evaluation import time_calls
from litquant.fresh_process import json_lines

__all__ = ["STABLE_SPREAD", "environment", "format_table", "measure", "run_bench", "stability_problems",
           "unstable_rows"]

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
    command = [sys.executable, "-m", "litquant.apps.bench", str(path), str(batch_size), str(threads), runner]
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


#: Round-to-round spread of the median latency above which a figure is called unstable.
STABLE_SPREAD = 0.20
#: How many times its p50 the p90 of a model's calls may be before the calls are called unstable.
STABLE_TAIL = 2.0
#: How many times slower than with fewer threads a model may run with more before its figure is called
#: contended: more cores never make a call that much slower unless other processes are running on them (a
#: steady load slows every round alike, so the spread alone misses it).
CONTENDED_SLOWDOWN = 1.5


def stability_problems(p50_ms: float, p90_ms: float, spread: float,
                       fewer_threads_p50_ms: float | None = None) -> list[str]:
    """Why a latency figure is not to be trusted, in words (empty: stable): its round medians far apart
    (:data:`STABLE_SPREAD`), its calls' tail far above their median (:data:`STABLE_TAIL`), or slower than the same
    model with fewer threads (:data:`CONTENDED_SLOWDOWN`; ``fewer_threads_p50_ms``: the fastest p50 there)."""
    problems = []
    if spread > STABLE_SPREAD:
        problems.append(f"its rounds {spread:.0%} apart")
    if p90_ms > STABLE_TAIL * p50_ms:
        problems.append(f"p90 {p90_ms / p50_ms:.1f}x the p50")
    if fewer_threads_p50_ms and p50_ms > CONTENDED_SLOWDOWN * fewer_threads_p50_ms:
        problems.append(f"{p50_ms / fewer_threads_p50_ms:.1f}x slower than with fewer threads")
    return problems


def unstable_rows(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """The rows of :func:`measure` whose latency is not to be trusted, each with its
    :func:`stability_problems`, judged against its own rounds and calls and against the same model and batch
    size at fewer threads."""
    found = []
    for row in rows:
        fewer = [other["p50_ms"] for other in rows if (other["model"], other["batch_size"]) ==
                 (row["model"], row["batch_size"]) and other["threads"] < row["threads"]]
        problems = stability_problems(row["p50_ms"], row["p90_ms"], row["spread"], min(fewer, default=None))
        if problems:
            found.append((row, problems))
    return found


def _cell(value: float | None, width: int, fmt: str) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def format_table(rows: Sequence[dict[str, Any]], cold: dict[str, dict[str, Any]] | None = None) -> str:
    """The latency table of :func:`measure`'s ``rows``, with each model's cold start and RSS growth when
    ``cold`` holds them (``-`` where one failed; no such columns without ``cold``), then one line per figure
    that :func:`unstable_rows` finds unstable."""
    header = (f"{'model':<28} {'batch':>5} {'thr':>3} {'p50 ms':>9} {'p90 ms':>9} {'spread':>7} {'vs best':>7}"
              + (f"  {'cold s':>7} {'+RSS MB':>8}" if cold else ""))
    lines = [header, "-" * len(header)]
    for row in rows:
        best = min(r["p50_ms"] for r in rows if (r["batch_size"], r["threads"]) == (row["batch_size"], row["threads"]))
        line = (f"{row['model'][-28:]:<28} {row['batch_size']:>5} {row['threads']:>3} {row['p50_ms']:>9.4g} "
                f"{row['p90_ms']:>9.4g} {row['spread']:>6.1%} {row['p50_ms'] / best:>6.2f}x")
        if cold:
            start = cold.get(row["model"], {})
            line += f"  {_cell(start.get('cold_start_s'), 7, '.3g')} {_cell(start.get('rss_growth_mb'), 8, '.4g')}"
        lines.append(line)
    for row, problems in unstable_rows(rows):
        lines.append(f"unstable: {row['model']} at batch {row['batch_size']}, {row['threads']} thread(s): "
                     f"{', '.join(problems)}")
    if len(lines) > len(rows) + 2:
        lines.append("(other processes on the same cores are the usual cause: measure again on an idle machine)")
    return "\n".join(lines)


def run_bench(paths: Sequence[str], batch_sizes: Sequence[int], threads: Sequence[int], rounds: int, calls: int,
              runner: str, out: Path, cold_start: bool = True) -> None:
    """Load every model of ``paths``, :func:`measure` them (and, with ``cold_start``, their cold start in a fresh
    process each), print the table (:func:`format_table`) and write the results with the :func:`environment` to
    ``out`` (JSON; each row's ``unstable`` lists its :func:`stability_problems`; ``cold_start`` is ``null``
    without ``cold_start``)."""
    from litquant.files import write_json

    previous_threads = torch.get_num_threads()
    models: dict[str, dict[int, Model]] = {}
    for path in paths:
        if path.endswith(".onnx"):  # ONNX Runtime fixes its thread count when loading
            models[path] = {t: load_model(path, threads=t, progress=False) for t in threads}
        else:
            model = load_model(path, runner, batch_sizes=batch_sizes, progress=False)
            if runner == "aot" and path.endswith(".pt2"):  # build (or check) the cached packages now, so
                for size in batch_sizes:                  # that cold start measures a cached start
                    model(torch.zeros(size, 1, 28, 28))
            models[path] = dict.fromkeys(threads, model)
    cold = {path: cold_start_in_fresh_process(path, batch_sizes[0], threads[0], runner)
            for path in paths} if cold_start else {}
    try:
        rows = measure(models, batch_sizes, threads, rounds, calls)
    finally:
        torch.set_num_threads(previous_threads)
    print(format_table(rows, cold))
    problems = {id(row): found for row, found in unstable_rows(rows)}
    for row in rows:
        row["unstable"] = problems.get(id(row), [])
    write_json(out, {"environment": environment(), "runner": runner, "results": rows,
                     "cold_start": {"batch_size": batch_sizes[0], "threads": threads[0], "models": cold}
                     if cold_start else None})
    print(f"wrote {out}")


if __name__ == "__main__":  # the fresh process of cold_start_in_fresh_process: PATH BATCH_SIZE THREADS RUNNER
    model_path, batch_size, thread_count, runner_name = sys.argv[1:5]
    print(json.dumps(_cold_start(model_path, int(batch_size), int(thread_count), runner_name)))
