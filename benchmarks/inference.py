"""Inference: fp32 eager and compiled, every int8 artifact, ONNX Runtime fp32 and int8, in one table.

From one fp32 checkpoint (``--ckpt_path``, or trained here with ``litquant fit``'s defaults), the script
exports the fp32 model (``fp32.pt2``, ``onnxruntime.fp32.onnx``), quantizes it with every method of
:func:`litquant.quantization.quantize`, then measures every model in one process:

- latency (median ms of one call) at each batch size and thread count, the models alternating round by
  round; ``.pt2`` models are loaded and compiled (inductor, freezing) under each thread count, since
  inductor's CPU kernels are specialised on the thread count they are compiled with;
- throughput (samples/s at the largest batch), file size, and test accuracy on the whole test split.

Example::

    python benchmarks/inference.py --data_dir ../shared/data --ckpt_path runs/mnist/version_0/checkpoints/last.ckpt
    python benchmarks/inference.py --data_dir ../shared/data --train_epochs 2     # trains the model first
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, datamodule, markdown_table, write_markdown
from jsonargparse import ArgumentParser

from litquant.apps.bench import measure as bench_measure
from litquant.apps.workflow import best_checkpoint
from litquant.artifacts.loading import load_artifact
from litquant.checkpoints import load_checkpoint, load_classifier
from litquant.cli.lightning import LitquantCLI
from litquant.cli.options import add_quantize_arguments, legacy_quant_flags, quantize_config
from litquant.data import MNISTDataModule
from litquant.evaluation import evaluate
from litquant.quantization import METHODS, QuantizeConfig, export_fp32, get_method, quantize

NAME = "inference"
#: The fp32 baselines; every int8 model is compared with the fastest of them per batch size and thread count.
FP32_BASELINES = ("fp32 eager", "fp32 compiled", "onnxruntime fp32")
TARGETS = {"int8_speedup_batch_large": 3.0, "int8_speedup_batch_1": 2.5, "pytorch_over_onnxruntime_int8": 1.2,
           "max_accuracy_drop_points": 0.1}


def train_checkpoint(dm: MNISTDataModule, epochs: int, seed: int, root: Path) -> Path:
    """``litquant fit`` with its defaults for ``epochs`` on the data module; returns the best-``val_acc`` checkpoint."""
    cli = LitquantCLI(args=[f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={root}",
                            f"--seed_everything={seed}", "--trainer.enable_progress_bar=false"], run=False)
    cli.trainer.fit(cli.model, datamodule=dm)
    return Path(best_checkpoint(cli.trainer))  # the checkpoint `litquant demo` quantizes too


def checkpoint_info(ckpt: Path) -> dict:
    """Where the fp32 model came from: epochs, steps and the data and model hyper-parameters it was trained with."""
    checkpoint = load_checkpoint(ckpt)
    return {"path": ckpt.name, "epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step"),
            "model": dict(checkpoint.get("hyper_parameters", {})),
            "data": dict(checkpoint.get("datamodule_hyper_parameters", {}))}


def build_artifacts(ckpt: Path, dm: MNISTDataModule, out: Path, methods: list[str],
                    config: QuantizeConfig) -> dict[str, dict]:
    """Export fp32 and quantize with each method; returns ``{model name: {"path", "seconds"}}``."""
    artifacts = {}
    started = time.perf_counter()
    export_fp32(ckpt, out, datamodule=dm)
    seconds = time.perf_counter() - started
    artifacts["fp32 compiled"] = {"path": out / "fp32.pt2", "seconds": seconds}
    artifacts["onnxruntime fp32"] = {"path": out / "onnxruntime.fp32.onnx", "seconds": seconds}
    for method in methods:
        started = time.perf_counter()
        path = quantize(method, ckpt, dm, out, config=config)
        name = f"{method} int8"
        artifacts[name] = {"path": path, "seconds": time.perf_counter() - started}
    return artifacts


def load_models(ckpt: Path, artifacts: dict[str, dict], threads: int) -> dict[str, Callable]:
    """Every model, loaded (and for ``.pt2``, compiled on first call) under ``threads`` threads."""
    torch.set_num_threads(threads)
    torch._dynamo.reset()  # a fresh compilation under this thread count
    eager = load_classifier(ckpt).model.eval()

    def run_eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return eager(x)

    models = {"fp32 eager": run_eager}
    for name, artifact in artifacts.items():
        models[name] = load_artifact(artifact["path"], threads=threads, progress=False)
    return models


def measure(models: dict[str, Callable], batch_sizes: list[int], threads: int, rounds: int,
            repeats: int) -> dict[str, dict[int, dict]]:
    """Per model and batch size: first-call seconds, then ``litquant bench``'s interleaved rounds (p50 as
    ``median_ms``, p90, spread of the round medians)."""
    results: dict[str, dict[int, dict]] = {name: {} for name in models}
    for name, model in models.items():
        for batch in batch_sizes:
            started = time.perf_counter()
            model(torch.randn(batch, 1, 28, 28))
            results[name][batch] = {"first_call_s": time.perf_counter() - started}
    for row in bench_measure({name: {threads: model} for name, model in models.items()}, batch_sizes, [threads],
                             rounds=rounds, calls=repeats):
        results[row["model"]][row["batch_size"]].update(
            median_ms=row["p50_ms"], p90_ms=row["p90_ms"], spread=row["spread"], samples_per_s=row["samples_per_s"])
    print(f"{threads} thread(s): " + "; ".join(
        f"{name} " + ", ".join(f"b{b} {e['median_ms']:.2f} ms" for b, e in per.items())
        for name, per in results.items()), flush=True)
    return results


def int8_kernel_time(model: Callable, batch: int, calls: int = 50) -> dict:
    """Per call at ``batch``: wall ms, and ms inside the int8 kernels themselves (oneDNN ``qconv``/``qlinear``,
    quantized max-pool), from torch.profiler; the difference is graph and call overhead."""
    from torch.profiler import profile

    x = torch.randn(batch, 1, 28, 28)
    model(x)
    with profile() as prof:
        started = time.perf_counter()
        for _ in range(calls):
            model(x)
        wall = time.perf_counter() - started
    kernels = sum(e.self_cpu_time_total for e in prof.key_averages()
                  if e.key.startswith(("onednn::", "quantized::")))
    return {"kernels_ms": kernels / 1000 / calls, "call_ms_profiled": wall * 1000 / calls}


def main() -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=0)
    parser.add_argument("--ckpt_path", default=None, help="fp32 checkpoint (default: train one here)")
    parser.add_argument("--train_epochs", type=int, default=2, help="epochs of the model trained without --ckpt_path")
    parser.add_argument("--out", default=None, help="folder for the artifacts (default: a temporary one)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated quantization methods")
    add_quantize_arguments(parser)  # --quant.*, as `litquant quantize` and `litquant demo` take them
    parser.add_argument("--batch_sizes", default="1,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="calls per latency measurement")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args(legacy_quant_flags(sys.argv[1:]))
    config = quantize_config(args)
    methods = [m for m in args.methods.split(",") if m]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    big, small, max_threads = max(batch_sizes), min(batch_sizes), max(thread_counts)
    dm = datamodule(args)
    default_threads = torch.get_num_threads()

    with tempfile.TemporaryDirectory(prefix="litquant-inference-") as work:
        out = Path(args.out) if args.out else Path(work) / "artifacts"
        trained_s = None
        if args.ckpt_path:
            ckpt = Path(args.ckpt_path)
        else:
            started = time.perf_counter()
            ckpt = train_checkpoint(dm, args.train_epochs, args.seed, Path(work) / "fit")
            trained_s = time.perf_counter() - started
        trained_from = checkpoint_info(ckpt)
        artifacts = build_artifacts(ckpt, dm, out, methods, config)
        pytorch_int8 = [f"{m} int8" for m in methods if not get_method(m).onnx]
        latency = {}
        accuracy = {}
        kernel_time = None
        for threads in thread_counts:
            models = load_models(ckpt, artifacts, threads)
            latency[threads] = measure(models, batch_sizes, threads, args.rounds, args.repeats)
            if threads == max_threads:
                accuracy = {name: evaluate(model, dm, "test", 256) for name, model in models.items()}
                if pytorch_int8:
                    fastest = min(pytorch_int8, key=lambda n: latency[threads][n][small]["median_ms"])
                    kernel_time = {"model": fastest, "batch": small, "threads": threads,
                                   **int8_kernel_time(models[fastest], small)}
        sizes = {name: Path(a["path"]).stat().st_size for name, a in artifacts.items()}
        sizes["fp32 eager"] = sizes["fp32 compiled"]
        torch.set_num_threads(default_threads)

    names = list(latency[thread_counts[0]])
    table_rows, models_out = [], {}
    for name in names:
        entry = {"size_bytes": sizes[name], "test_acc": accuracy.get(name),
                 "accuracy_drop_points": (accuracy["fp32 eager"] - accuracy[name]) * 100 if accuracy else None,
                 "build_s": artifacts.get(name, {}).get("seconds")}
        for threads in thread_counts:
            for batch in batch_sizes:
                m = latency[threads][name][batch]
                eager = latency[threads]["fp32 eager"][batch]["median_ms"]
                best = min((n for n in FP32_BASELINES if n in latency[threads]),
                           key=lambda n: latency[threads][n][batch]["median_ms"])
                entry[f"t{threads}_b{batch}"] = {
                    **m, "speedup_vs_eager": eager / m["median_ms"], "best_fp32": best,
                    "speedup_vs_best_fp32": latency[threads][best][batch]["median_ms"] / m["median_ms"]}
        models_out[name] = entry
        table_rows.append([name] + [entry[f"t{t}_b{b}"]["median_ms"] for t in thread_counts for b in batch_sizes]
                          + [entry[f"t{max_threads}_b{big}"]["samples_per_s"],
                             entry[f"t{max_threads}_b{big}"]["speedup_vs_eager"],
                             entry[f"t{max_threads}_b{big}"]["speedup_vs_best_fp32"],
                             entry[f"t{max_threads}_b{small}"]["speedup_vs_best_fp32"],
                             max(entry[f"t{t}_b{b}"]["spread"] for t in thread_counts for b in batch_sizes),
                             sizes[name] / 1e6, entry["test_acc"]])

    checks = {}
    int8_names = [n for n in names if n.endswith("int8")]
    for threads in thread_counts:
        key = f"t{threads}"
        best_big = max(int8_names, key=lambda n: models_out[n][f"{key}_b{big}"]["speedup_vs_eager"])
        best_small = max(int8_names, key=lambda n: models_out[n][f"{key}_b{small}"]["speedup_vs_eager"])
        checks[key] = {
            f"best_int8_speedup_b{big}": {"model": best_big,
                                          "speedup": models_out[best_big][f"{key}_b{big}"]["speedup_vs_eager"]},
            f"best_int8_speedup_b{small}": {"model": best_small,
                                            "speedup": models_out[best_small][f"{key}_b{small}"]["speedup_vs_eager"]},
        }
        checks[key]["met_speedup_large"] = (checks[key][f"best_int8_speedup_b{big}"]["speedup"]
                                            >= TARGETS["int8_speedup_batch_large"])
        checks[key]["met_speedup_1"] = (checks[key][f"best_int8_speedup_b{small}"]["speedup"]
                                        >= TARGETS["int8_speedup_batch_1"])
        if pytorch_int8 and "onnxruntime int8" in models_out:
            for batch in batch_sizes:
                fastest = min(pytorch_int8, key=lambda n: models_out[n][f"{key}_b{batch}"]["median_ms"])
                ratio = (models_out[fastest][f"{key}_b{batch}"]["median_ms"]
                         / models_out["onnxruntime int8"][f"{key}_b{batch}"]["median_ms"])
                checks[key][f"pytorch_over_onnxruntime_int8_b{batch}"] = {
                    "model": fastest, "ratio": ratio, "met": ratio <= TARGETS["pytorch_over_onnxruntime_int8"]}
    if accuracy:
        drops = {n: models_out[n]["accuracy_drop_points"] for n in int8_names}
        checks["accuracy_drop_points"] = drops
        checks["met_accuracy"] = all(d <= TARGETS["max_accuracy_drop_points"] for d in drops.values())

    result = {
        "settings": {"checkpoint": str(args.ckpt_path) if args.ckpt_path else f"trained here: {args.train_epochs} "
                     f"epoch(s) on {len(dm.split('train'))} samples", "train_s": trained_s,
                     "checkpoint_info": trained_from,
                     "test_samples": len(dm.split("test")), "batch_sizes": batch_sizes, "threads": thread_counts,
                     "rounds": args.rounds, "repeats": args.repeats, "methods": methods,
                     "quant": dataclasses.asdict(config)},
        "targets": TARGETS, "checks": checks, "models": models_out, "int8_kernel_time": kernel_time,
    }
    save_results(args.name, result)

    columns = (["model"] + [f"{t} thr b{b} ms" for t in thread_counts for b in batch_sizes]
               + [f"samples/s (b{big}, {max_threads} thr)", "x fp32 eager", f"x best fp32 b{big}",
                  f"x best fp32 b{small}", "max spread", "MB", "test_acc"])
    table = markdown_table(columns, table_rows)
    lines = []
    for threads in thread_counts:
        c = checks[f"t{threads}"]
        large, one = c[f"best_int8_speedup_b{big}"], c[f"best_int8_speedup_b{small}"]
        lines.append(f"- {threads} thread(s): best int8 at batch {big}: {large['model']} {large['speedup']:.2f}x "
                     f"fp32 eager (target >= {TARGETS['int8_speedup_batch_large']}: "
                     f"{'met' if c['met_speedup_large'] else 'missed'}); at batch {small}: {one['model']} "
                     f"{one['speedup']:.2f}x (target >= {TARGETS['int8_speedup_batch_1']}: "
                     f"{'met' if c['met_speedup_1'] else 'missed'}).")
        for batch in batch_sizes:
            if (v := c.get(f"pytorch_over_onnxruntime_int8_b{batch}")) is not None:
                lines.append(f"  Fastest PyTorch int8 ({v['model']}) / ONNX Runtime int8 latency at batch {batch}: "
                             f"{v['ratio']:.2f} (target <= {TARGETS['pytorch_over_onnxruntime_int8']}: "
                             f"{'met' if v['met'] else 'missed'}).")
    for name in int8_names:
        for threads in thread_counts:
            for batch in batch_sizes:
                e = models_out[name][f"t{threads}_b{batch}"]
                if e["speedup_vs_best_fp32"] < 1:
                    lines.append(f"- {name} is **slower than {e['best_fp32']}** at batch {batch}, {threads} "
                                 f"thread(s): {1 / e['speedup_vs_best_fp32']:.2f}x its latency.")
    if accuracy:
        drops = ", ".join(f"{n} {d:+.2f}" for n, d in checks["accuracy_drop_points"].items())
        lines.append(f"- Accuracy drop vs fp32 eager (points): {drops} (target <= "
                     f"{TARGETS['max_accuracy_drop_points']}: {'met' if checks['met_accuracy'] else 'missed'}).")
    if kernel_time and "onnxruntime int8" in models_out:
        k = kernel_time
        ort_ms = models_out["onnxruntime int8"][f"t{k['threads']}_b{k['batch']}"]["median_ms"]
        reachable = k["kernels_ms"] <= TARGETS["pytorch_over_onnxruntime_int8"] * ort_ms
        ending = "." if reachable else "; with these kernels no cut in call overhead reaches the target."
        lines.append(
            f"- Where {k['model']}'s time goes at batch {k['batch']}, {k['threads']} thread(s) (torch.profiler, "
            f"{k['call_ms_profiled']:.3f} ms a call): {k['kernels_ms']:.3f} ms in the int8 kernels themselves "
            f"(oneDNN qconv/qlinear, quantized max-pool), {k['kernels_ms'] / ort_ms:.2f}x ONNX Runtime's whole "
            f"call ({ort_ms:.3f} ms){ending}")
    body = (f"Model: {result['settings']['checkpoint']}. Latency: p50 of single calls over {args.rounds} "
            f"interleaved rounds of {args.repeats} calls (`litquant bench`'s measurement; spread: max - min of the "
            "round medians over the p50); \"x best fp32\": over the fastest of fp32 eager, fp32 compiled and "
            f"ONNX Runtime fp32; test accuracy on {result['settings']['test_samples']} "
            f"samples. Size: the artifact file (fp32 eager: the fp32 `.pt2`).\n\n{table}\n" + "\n".join(lines) + "\n")
    write_markdown(args.name, "Inference: fp32, int8, ONNX Runtime", body, environment())
    print(table + "\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
