"""What litquant's AOTInductor runner adds to a call of the package it runs, and batch 1 on one thread or two.

One PT2E post-training int8 ``.pt2`` (``--ckpt_path``, or a model trained here for one epoch on ``--train_size``
images) is built once with AOTInductor for each batch size. Measured side by side in one process (interleaved
rounds, medians, ``litquant.apps.bench.measure``), at each process thread count (``torch.set_num_threads``):

- ``package``: the raw AOTInductor package, called directly (``torch._inductor.aoti_load_package(path)(x)``);
- ``litquant runner``: ``litquant.artifacts.aot.aot_runner_for_file`` (cache checks done once, at load);
- ``load_artifact``: ``load_artifact(path, runner="aot")``, what ``litquant evaluate/predict --runner aot`` call.

The overhead is litquant's p50 minus the package's at the same thread count the call ran on: litquant runs a batch
of at most ``SINGLE_THREAD_MAX_BATCH`` on one thread, so at 2 process threads its batch-1 call is compared with the
package's 1-thread call, and the package's own 1-thread and 2-thread calls say whether that choice is right
(target: overhead <= 0.02 ms at batch 1)::

    python benchmarks/aot_overhead.py --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, datamodule, fp32_checkpoint, markdown_table, write_markdown

from litquant.apps.bench import measure
from litquant.artifacts.aot import SINGLE_THREAD_MAX_BATCH, aot_runner_for_file, package_path
from litquant.artifacts.loading import load_artifact
from litquant.cpu import cpu_info
from litquant.quantization import QuantizeConfig, quantize

NAME = "aot_overhead"
TARGET_OVERHEAD_MS = 0.02


def make_pt2(args: argparse.Namespace, out: Path) -> Path:
    dm = datamodule(args, batch_size=128)
    checkpoint = fp32_checkpoint(args, dm, out)
    return quantize("ptq", checkpoint, dm, out, config=QuantizeConfig(calibration_batches=4), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=1024, val_size=256, test_size=256)
    parser.add_argument("--ckpt_path", default=None, help="fp32 checkpoint (default: train one here)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--no_max_autotune", action="store_true", help="build the packages without it (faster)")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="litquant-aot-overhead-") as scratch:
        pt2 = make_pt2(args, Path(scratch))
        cache = Path(scratch) / "cache"
        os.environ["LITQUANT_CACHE"] = str(cache)  # load_artifact's runner finds the packages built here
        runner = aot_runner_for_file(pt2, args.batch_sizes, cache / "aot", eager=True,
                                     max_autotune=not args.no_max_autotune)
        loaded = load_artifact(pt2, runner="aot", batch_sizes=args.batch_sizes, progress=False)
        sha256 = hashlib.sha256(pt2.read_bytes()).hexdigest()
        rows = []
        for batch_size in args.batch_sizes:
            package = torch._inductor.aoti_load_package(str(package_path(cache / "aot", sha256, batch_size)))

            def raw(x: torch.Tensor, package=package) -> torch.Tensor:
                with torch.inference_mode():
                    return package(x)

            models = {"package": dict.fromkeys(args.threads, raw),
                      "litquant runner": dict.fromkeys(args.threads, runner),
                      "load_artifact": dict.fromkeys(args.threads, loaded)}
            rows += measure(models, [batch_size], args.threads, args.rounds, args.calls)
    p50 = {(r["model"], r["batch_size"], r["threads"]): r["p50_ms"] for r in rows}
    overheads = []
    for batch_size in args.batch_sizes:
        for threads in args.threads:
            ran_on = 1 if batch_size <= SINGLE_THREAD_MAX_BATCH else threads
            base = p50[("package", batch_size, ran_on)]
            overheads.append({"batch_size": batch_size, "threads": threads, "ran_on_threads": ran_on,
                              "package_ms": base,
                              **{f"{name}_overhead_ms": p50[(name, batch_size, threads)] - base
                                 for name in ("litquant runner", "load_artifact")}})
    batch1 = [o for o in overheads if o["batch_size"] == 1]
    checks = {"max_overhead_batch_1_ms": max((max(o["litquant runner_overhead_ms"], o["load_artifact_overhead_ms"])
                                              for o in batch1), default=None),
              "target_overhead_ms": TARGET_OVERHEAD_MS}
    if 1 in args.batch_sizes and {1, 2} <= set(args.threads):
        checks["package_batch_1_two_over_one_thread"] = p50[("package", 1, 2)] / p50[("package", 1, 1)]
    checks["met"] = checks["max_overhead_batch_1_ms"] is not None and \
        checks["max_overhead_batch_1_ms"] <= TARGET_OVERHEAD_MS
    result = {"rows": rows, "overheads": overheads, "checks": checks,
              "single_thread_max_batch": SINGLE_THREAD_MAX_BATCH}
    save_results(args.name, result)
    info = cpu_info()
    body = markdown_table(["call", "batch", "threads", "p50 ms", "p90 ms", "spread"],
                          [[r["model"], r["batch_size"], r["threads"], r["p50_ms"], r["p90_ms"], r["spread"]]
                           for r in rows])
    body += "\nlitquant's p50 minus the package's, on the threads the call ran on:\n\n" + markdown_table(
        ["batch", "process threads", "ran on", "package ms", "runner overhead ms", "load_artifact overhead ms"],
        [[o["batch_size"], o["threads"], o["ran_on_threads"], o["package_ms"], o["litquant runner_overhead_ms"],
          o["load_artifact_overhead_ms"]] for o in overheads])
    two_over_one = checks.get("package_batch_1_two_over_one_thread")
    body += (f"\nTarget: overhead <= {TARGET_OVERHEAD_MS} ms at batch 1: **{'met' if checks['met'] else 'missed'}**."
             + (f" The package at batch 1 on 2 threads takes {two_over_one:.2f}x its 1-thread time." if two_over_one
                else "") + f" CPU kind: {info.isa}.\n")
    write_markdown(args.name, f"AOTInductor runner overhead over the raw package ({info.isa})", body, environment())
    print(body)


if __name__ == "__main__":
    main()
