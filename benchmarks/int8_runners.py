"""PyTorch int8 runners against ONNX Runtime int8: ``torch.compile`` (the runtime's), AOTInductor, ORT.

One PT2E post-training int8 ``.pt2`` and one ONNX Runtime int8 ``.onnx`` of the same fp32 checkpoint
(``--ckpt_path``, or a model trained here on ``--train_size`` samples for one epoch) are measured side by
side in one process: interleaved rounds, medians, at each batch size and thread count. The ``.pt2`` is
compiled per thread count with ``torch.compile`` (inductor's kernels are specialised on it), and once per
batch size with AOTInductor (cached under a temporary folder, so the build is part of every run).
Results go to ``results/int8_runners.<cpu kind>.json`` and ``.md``: an AVX2 result never overwrites a VNNI one.

Example::

    python benchmarks/int8_runners.py --data_dir ../shared/data --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, datamodule, fp32_checkpoint, markdown_table, write_markdown

from litquant.apps.bench import measure
from litquant.artifacts.aot import aot_runner_for_file
from litquant.artifacts.loading import load_artifact
from litquant.cpu import cpu_info
from litquant.quantization import QuantizeConfig, quantize

NAME = "int8_runners"
TARGETS = {"aot_over_onnxruntime_batch_1": 1.0, "aot_over_onnxruntime_batch_256": 0.6}  # on a VNNI machine


def make_artifacts(args: argparse.Namespace, out: Path) -> tuple[Path, Path]:
    dm = datamodule(args, batch_size=128)
    checkpoint = fp32_checkpoint(args, dm, out)
    config = QuantizeConfig(calibration_batches=args.calibration_batches)
    pt2 = quantize("ptq", checkpoint, dm, out, config=config, progress=False)
    onnx = quantize("onnxruntime", checkpoint, dm, out, config=config, progress=False)
    return pt2, onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=4096, val_size=1024, test_size=1024)
    parser.add_argument("--ckpt_path", default=None, help="fp32 checkpoint (default: train one here)")
    parser.add_argument("--calibration_batches", type=int, default=16)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--no_max_autotune", action="store_true", help="build the AOTInductor packages without it")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="litquant-int8-runners-") as scratch:
        pt2, onnx = make_artifacts(args, Path(scratch))
        start = time.perf_counter()
        aot = aot_runner_for_file(pt2, args.batch_sizes, Path(scratch) / "aot", eager=True,
                                  max_autotune=not args.no_max_autotune)
        aot_build_s = time.perf_counter() - start
        models = {"torch.compile": {}, "AOTInductor": {}, "ONNX Runtime": {}}
        for threads in args.threads:
            torch.set_num_threads(threads)
            models["torch.compile"][threads] = load_artifact(pt2, progress=False)
            models["AOTInductor"][threads] = aot
            models["ONNX Runtime"][threads] = load_artifact(onnx, threads=threads)
        rows = measure(models, args.batch_sizes, args.threads, args.rounds, args.calls)
    ratios = []
    for batch_size in args.batch_sizes:
        for threads in args.threads:
            p50 = {r["model"]: r["p50_ms"] for r in rows if (r["batch_size"], r["threads"]) == (batch_size, threads)}
            ratios.append({"batch_size": batch_size, "threads": threads,
                           "aot_over_onnxruntime": p50["AOTInductor"] / p50["ONNX Runtime"],
                           "torch_compile_over_onnxruntime": p50["torch.compile"] / p50["ONNX Runtime"],
                           "aot_over_torch_compile": p50["AOTInductor"] / p50["torch.compile"]})
    result = {"rows": rows, "ratios": ratios, "aot_build_s": aot_build_s, "targets_on_vnni": TARGETS,
              "max_autotune": not args.no_max_autotune}
    save_results(args.name, result)
    info = cpu_info()
    body = markdown_table(["runner", "batch", "threads", "p50 ms", "p90 ms", "spread"],
                          [[r["model"], r["batch_size"], r["threads"], r["p50_ms"], r["p90_ms"], r["spread"]]
                           for r in rows])
    body += "\nRatios of medians (below 1: faster than ONNX Runtime int8):\n\n" + markdown_table(
        ["batch", "threads", "AOTInductor / ORT", "torch.compile / ORT", "AOTInductor / torch.compile"],
        [[r["batch_size"], r["threads"], r["aot_over_onnxruntime"], r["torch_compile_over_onnxruntime"],
          r["aot_over_torch_compile"]] for r in ratios])
    body += (f"\nCPU kind: {info.isa} (VNNI: {info.has_vnni}). The targets (AOTInductor ≤ 1.0× ORT at batch 1, "
             f"≤ 0.6× at batch 256, 2 threads) are for VNNI machines; AOTInductor packages built in "
             f"{aot_build_s:.0f} s "
             f"(max_autotune {'on' if not args.no_max_autotune else 'off'}).\n")
    write_markdown(args.name, f"int8 runners: torch.compile, AOTInductor, ONNX Runtime ({info.isa})", body,
                   environment())


if __name__ == "__main__":
    main()
