"""The quantization results: every method run, every claim checked by doing it, one table.

:func:`build_report` exports the fp32 model, quantizes it with each method, and for each model (fp32 first)
evaluates it with a plain PyTorch loop and with a Lightning ``Trainer``, reloads it in a fresh Python process,
and writes ``report.json`` (a list, one entry per model) and ``report.md`` (the original tutorial's compatibility
table with the numbers added, and a speed table).

Speed is measured once every model is built (no training or calibration running beside it), all models
side by side in interleaved rounds at one fixed thread count (:func:`litquant.apps.bench.measure`: p50, p90 and
the spread of the round medians), with the fp32 baselines of the registry
(:data:`~litquant.quantization.BASELINES`: the exported graph with eager kernels, the same graph compiled with
``torch.compile`` and ONNX Runtime fp32). Every int8 model is compared with the *fastest*
of them at each batch size. Cold start (load + first call) and resident memory come from a fresh process per
model (:func:`litquant.apps.bench.cold_start_in_fresh_process`). A method that fails gets ``false``
booleans and an ``error`` string; the others still run.

Example::

    from litquant.data import MNISTDataModule
    from litquant.apps.report import build_report

    rows = build_report("fp32.ckpt", MNISTDataModule(train_size=5000), "out", threads=2)
    print(open("out/report.md").read())
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from litquant.apps.bench import STABLE_SPREAD, cold_start_in_fresh_process, measure, stability_problems
from litquant.artifacts.loading import load_artifact, read_description
from litquant.evaluation import ArtifactModule, evaluate
from litquant.files import write_json, write_text
from litquant.fresh_process import check_all_in_fresh_process, data_dir_for_child
from litquant.quantization import (
    BASELINES,
    METHODS,
    QuantizeConfig,
    artifact_name,
    export_fp32,
    get_entry,
    get_method,
    quantize,
)

__all__ = ["REPORT_KEYS", "build_report", "label", "render_markdown"]

#: Batch sizes timed.
BATCH_SIZES = (1, 256)

#: Keys of every ``report.json`` entry.
REPORT_KEYS = ("method", "artifact", "test_acc", "size_bytes", "latency_ms_b1", "latency_ms_b256",
               "latency_p90_ms_b1", "latency_p90_ms_b256", "spread_b1", "spread_b256", "cold_start_s",
               "peak_rss_mb", "speedup_b1_vs_best_fp32", "speedup_b256_vs_best_fp32",
               "pytorch_inference", "trainer_inference", "saved", "reloaded_in_fresh_process")


def label(method: str) -> str:
    """A model's name in the table: the label of the registered method or fp32 baseline (the original
    tutorial's names), else the name itself."""
    return get_entry(method).label if method in BASELINES or method in METHODS else method


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0]


def _empty_row(method: str, artifact: Path | None) -> dict[str, Any]:
    return {**dict.fromkeys(REPORT_KEYS), "method": method, "artifact": artifact.name if artifact else None,
            "pytorch_inference": False, "trainer_inference": False, "saved": False,
            "reloaded_in_fresh_process": False}


def _trainer_accuracy(model: Any, datamodule: Any) -> float:
    """Test accuracy of a loaded artifact through ``Trainer.test``."""
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(ArtifactModule(model), datamodule=datamodule, verbose=False)
    accuracy = float(results[0]["test_acc"])
    if not math.isfinite(accuracy):
        raise ValueError(f"Trainer.test gave test_acc={accuracy}")
    return accuracy


def _measure(row: dict[str, Any], path: Path, datamodule: Any, *, compile: bool, progress: bool) -> None:
    """Fill ``row`` by loading and evaluating the artifact (both ways); record the first error."""
    row["saved"] = path.is_file() and path.stat().st_size > 0 and read_description(path).method == row["method"]
    row["size_bytes"] = path.stat().st_size
    model = load_artifact(path, compile=compile, progress=progress)
    row["runtime"] = ("onnxruntime" if model.kind == "onnx"
                      else "torch.compile (inductor, freezing)" if compile else "torch.export graph, eager kernels")
    steps = (
        ("pytorch_inference", lambda: row.update(test_acc=evaluate(model, datamodule, "test", 256))),
        ("trainer_inference", lambda: row.update(trainer_test_acc=_trainer_accuracy(model, datamodule))),
    )
    for key, step in steps:
        _note(progress, f"report: {row['method']}: {key.replace('_', ' ')} ...")
        try:
            step()
            row[key] = True
        except Exception as err:  # noqa: BLE001 - the report records it and goes on
            row.setdefault("error", f"{key}: {_error(err)}")
            if progress:
                traceback.print_exc(file=sys.stderr)


def _speed_models(checkpoint: Path, out_dir: Path, rows: Sequence[dict[str, Any]], paths: Sequence[Path | None],
                  compile: bool) -> dict[str, tuple[Path, Any]]:
    """``{name: (file for the cold start, loader)}`` for the fp32 baselines and every int8 model that loaded."""
    loaders: dict[str, tuple[Path, Any]] = {}
    for baseline in BASELINES.values():
        path = out_dir / baseline.file_name
        if not path.is_file() or (baseline.compiled and not compile):
            continue
        cold_start = checkpoint if baseline.cold_start == "checkpoint" else path
        load = None if baseline.compiled is None else \
            (lambda path=path, compiled=baseline.compiled: load_artifact(path, compile=compiled, progress=False))
        loaders[baseline.name] = (cold_start, load)
    for row, path in zip(rows, paths, strict=True):
        if row["method"] != "fp32" and path is not None and row["pytorch_inference"]:
            loaders[row["method"]] = (path, None)
    return loaders


def _time_all(loaders: dict[str, tuple[Path, Any]], *, compile: bool, threads: int, rounds: int, calls: int,
              cold_start: bool, progress: bool) -> dict[str, dict[str, Any]]:
    """Every model timed side by side at ``threads`` threads: p50/p90/spread per batch size of
    :data:`BATCH_SIZES` (:func:`litquant.apps.bench.measure`), cold start and peak RSS in a fresh process each."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # fixed before loading: compiled code is specialised on the thread count
    timings: dict[str, dict[str, Any]] = {name: {"method": name} for name in loaders}  # names the baselines' rows
    try:
        models = {}
        for name, (path, load) in loaders.items():
            models[name] = {threads: load() if load else load_artifact(path, compile=compile, threads=threads,
                                                                         progress=False)}
        for batch_size in BATCH_SIZES:
            _note(progress, f"report: timing {len(models)} models at batch {batch_size}, {rounds} rounds ...")
            batch_calls = calls * 5 if batch_size == 1 else calls
            for result in measure(models, [batch_size], [threads], rounds=rounds, calls=batch_calls):
                timings[result["model"]].update({f"latency_ms_b{batch_size}": result["p50_ms"],
                                                 f"latency_p90_ms_b{batch_size}": result["p90_ms"],
                                                 f"spread_b{batch_size}": result["spread"]})
    finally:
        torch.set_num_threads(previous)
    if cold_start:
        for name, (path, _) in loaders.items():
            _note(progress, f"report: {name}: cold start in a fresh process ...")
            start = cold_start_in_fresh_process(str(path), 1, threads)
            timings[name].update(cold_start_s=start.get("cold_start_s"), peak_rss_mb=start.get("peak_rss_mb"))
            if "error" in start:
                timings[name]["cold_start_error"] = start["error"]
    return timings


def _compare_with_best_fp32(entries: Sequence[dict[str, Any]], baselines: dict[str, dict[str, Any]]) -> None:
    """Per batch size, each entry's speed-up over the fastest fp32 baseline, and which one that was."""
    for batch_size in BATCH_SIZES:
        key = f"latency_ms_b{batch_size}"
        measured = {name: timing[key] for name, timing in baselines.items() if timing.get(key)}
        if not measured:
            continue
        best = min(measured, key=measured.__getitem__)
        for entry in entries:
            if entry.get(key):
                entry[f"best_fp32_b{batch_size}"] = best
                entry[f"speedup_b{batch_size}_vs_best_fp32"] = round(measured[best] / entry[key], 2)


def build_report(
    checkpoint: str | os.PathLike,
    datamodule: Any,
    out_dir: str | os.PathLike,
    methods: Sequence[str] | None = None,
    *,
    config: QuantizeConfig | None = None,
    threads: int = 2,
    fresh_process_check: bool = True,
    compile: bool = True,
    latency_repeats: int = 10,
    rounds: int = 5,
    cold_start: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Quantize with each method, check and time every model, write ``report.json`` and ``report.md``.

    Args:
        checkpoint: fp32 Lightning checkpoint of :class:`~litquant.model.MNISTClassifier`.
        datamodule: the data (training split: calibration and QAT; test split: accuracy).
        out_dir: folder of the artifacts and the reports.
        methods: int8 methods to run (registered names; default: every one of
            :data:`~litquant.quantization.METHODS`).
        config: the quantization options, passed to :func:`~litquant.quantization.quantize`.
        threads: PyTorch and ONNX Runtime threads while timing (fixed for all models).
        fresh_process_check: reload every artifact in a new Python process (a real subprocess).
        compile: run ``.pt2`` int8 models compiled with inductor (their fast path); the fp32 ``.pt2`` runs
            uncompiled, as the fp32 eager baseline.
        latency_repeats: timed calls per model and round at batch 256 (five times as many at batch 1).
        rounds: interleaved timing rounds.
        cold_start: time load + first call and peak RSS of every model in a fresh process of its own.
        progress: one line per step on stderr.
    """
    methods = list(METHODS if methods is None else methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown quantization method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    out_dir = Path(out_dir)
    datamodule.setup("fit")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    paths: list[Path | None] = []
    for method in ("fp32", *methods):
        path = out_dir / artifact_name(method)
        row = _empty_row(method, path)
        try:
            if method == "fp32":
                export_fp32(checkpoint, out_dir, datamodule=datamodule,
                            onnx=any(get_method(m).onnx for m in methods), progress=progress)
            else:
                quantize(method, checkpoint, datamodule, out_dir, config=config, progress=progress)
        except Exception as err:  # noqa: BLE001 - one failing method must not stop the report
            row["error"] = f"quantize: {_error(err)}"
            if progress:
                traceback.print_exc(file=sys.stderr)
            rows.append(row)
            paths.append(None)
            continue
        try:
            _measure(row, path, datamodule, compile=compile and method != "fp32", progress=progress)
        except Exception as err:  # noqa: BLE001
            row.setdefault("error", f"load: {_error(err)}")
        rows.append(row)
        paths.append(path)
    if fresh_process_check:
        existing = [p for p in paths if p is not None and p.is_file()]
        _note(progress, f"report: reloading {len(existing)} artifacts in a fresh process ...")
        checks = iter(check_all_in_fresh_process(existing, data_dir_for_child(datamodule),
                                                 dataset=datamodule.spec.name))
        for row, path in zip(rows, paths, strict=True):
            if path is not None and path.is_file():
                check = next(checks)
                row["reloaded_in_fresh_process"] = bool(check["ok"])
                row["fresh_process_accuracy"] = check["accuracy"]
                if not check["ok"]:
                    row.setdefault("error", f"fresh process: {check['error']}")
    try:
        timings = _time_all(_speed_models(Path(checkpoint), out_dir, rows, paths, compile), compile=compile,
                            threads=threads, rounds=rounds, calls=latency_repeats, cold_start=cold_start,
                            progress=progress)
    except Exception as err:  # noqa: BLE001 - the accuracy columns stand without the speed ones
        rows[0].setdefault("error", f"latency: {_error(err)}")
        timings = {}
    for row in rows:
        row.update(timings.get(row["method"], {}))
        row["threads"] = threads
    baselines = {name: timing for name, timing in timings.items() if name in BASELINES}
    rows[0]["fp32_baselines"] = {name: timing for name, timing in baselines.items() if name != "fp32"}
    _compare_with_best_fp32([*rows, *rows[0]["fp32_baselines"].values()], baselines)
    write_json(out_dir / "report.json", rows)
    write_text(out_dir / "report.md", render_markdown(rows))
    _note(progress, f"report: wrote {out_dir / 'report.json'} and {out_dir / 'report.md'} "
                    f"in {time.perf_counter() - started:.0f} s")
    return rows


def _yes(value: Any) -> str:
    return "Available" if value else "**Unavailable**"


def _number(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _speed_note(entry: dict[str, Any]) -> str:
    """In words: is this int8 model faster than the fastest fp32 baseline, at each batch size?"""
    words = []
    for batch_size in BATCH_SIZES:
        speedup, best = entry.get(f"speedup_b{batch_size}_vs_best_fp32"), entry.get(f"best_fp32_b{batch_size}")
        if speedup is not None and speedup < 1:
            words.append(f"**slower than {label(best)} at batch {batch_size}** ({1 / speedup:.1f}× its "
                         "latency)")
    return "; ".join(words) or "faster than every fp32 baseline"


def _speed_table(entries: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| Model | b=1 p50 (ms) | b=1 p90 | b=1 spread | Speed-up b=1 | b=256 p50 (ms) | b=256 p90 "
             "| b=256 spread | Speed-up b=256 | Cold start (s) | Peak RSS (MB) | vs the fastest fp32 |",
             "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |"]
    for entry in entries:
        cells = [label(entry["method"])]
        for batch_size in BATCH_SIZES:
            speedup = entry.get(f"speedup_b{batch_size}_vs_best_fp32")
            cells += [_number(entry.get(f"latency_ms_b{batch_size}"), ".3g"),
                      _number(entry.get(f"latency_p90_ms_b{batch_size}"), ".3g"),
                      _number(entry.get(f"spread_b{batch_size}"), ".0%"),
                      "–" if speedup is None else f"{speedup:.2f}×"]
        cells += [_number(entry.get("cold_start_s"), ".1f"), _number(entry.get("peak_rss_mb"), ".0f"),
                  "baseline" if entry["method"] in BASELINES else _speed_note(entry)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


#: Why the accuracy in an artifact's description and the report's test accuracy differ.
ACCURACY_NOTE = ("The accuracy embedded in each artifact's description (and its JSON copy) is measured when "
                 "the artifact is written, on a few validation batches, as a quick check that quantization "
                 "kept the model; the report's *Test accuracy* is the whole test split, a different and "
                 "larger set of images. The two differ by a few tenths of a point on small sets; only the "
                 "test accuracy compares methods.")


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The original tutorial's compatibility table with accuracy, size and latency added, then the speed table
    (every model and the fp32 baselines: p50, p90, spread, speed-up over the fastest fp32, cold start, RSS)."""
    fp32_size = rows[0].get("size_bytes") if rows and rows[0]["method"] == "fp32" else None
    lines = [
        "# Quantization report",
        "",
        "| Pattern | Quantization method | Inference with PyTorch | Inference with PyTorch Lightning (Trainer) "
        "| Saving model | Reloaded in a fresh process | Test accuracy | Size (MB) | Size vs fp32 "
        "| Latency b=1 (ms) | Latency b=256 (ms) | Speed-up b=1 | Speed-up b=256 |",
        "| :-: | --- | --- | --- | --- | --- | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for index, row in enumerate(rows):
        size = row.get("size_bytes")
        ratio = f"{size / fp32_size:.0%}" if size and fp32_size else "–"
        speedups = [row.get(f"speedup_b{b}_vs_best_fp32") for b in BATCH_SIZES]
        lines.append(
            f"| {chr(0x2460 + index)} | {label(row['method'])} | {_yes(row['pytorch_inference'])} "
            f"| {_yes(row['trainer_inference'])} | {_yes(row['saved'])} | {_yes(row['reloaded_in_fresh_process'])} "
            f"| {_number(row.get('test_acc'), '.4f')} | {_number(size and size / 1e6, '.2f')} | {ratio} "
            f"| {_number(row.get('latency_ms_b1'), '.3g')} | {_number(row.get('latency_ms_b256'), '.3g')} "
            + "".join(f"| {'–' if s is None else f'{s:.2f}×'} " for s in speedups) + "|"
        )
    threads = rows[0].get("threads") if rows else None
    baselines = list(rows[0].get("fp32_baselines", {}).values()) if rows else []
    entries = [rows[0], *baselines, *rows[1:]] if rows else []
    lines += ["", "Speed-ups compare each model with the **fastest** fp32 baseline at that batch size (fp32 "
              "eager, fp32 compiled with torch.compile, ONNX Runtime fp32), measured in the same run.", "",
              "## Speed", "", *_speed_table(entries), "",
              f"All models timed side by side in interleaved rounds on {threads} CPU thread(s), once every model "
              "was built; p50 and p90 of single calls; *spread* is (max - min) / median of the round medians. "
              "int8 `.pt2` models run compiled with inductor (freezing, int8 kernels checked after every "
              "compilation), the fp32 `.pt2` once with eager kernels and once compiled; ONNX Runtime runs "
              "without spinning threads. Cold start is loading plus the first call at batch 1 in a fresh "
              "process (compilation included), peak RSS that process's resident memory."]
    measured = [(entry, b) for entry in entries for b in BATCH_SIZES if entry.get(f"spread_b{b}") is not None]
    unstable = [(entry[f"spread_b{b}"], entry["method"], b, problems) for entry, b in measured
                if (problems := stability_problems(entry[f"latency_ms_b{b}"], entry[f"latency_p90_ms_b{b}"],
                                                   entry[f"spread_b{b}"]))]
    if unstable:
        _, method, batch_size, problems = max(unstable)
        lines += ["", f"**Latencies not stable**: {len(unstable)} of {len(measured)} measurements vary from round "
                  f"to round by more than {STABLE_SPREAD:.0%} or from call to call (worst: {label(method)} at "
                  f"batch {batch_size}, {', '.join(problems)}); read them with the spread beside them. A busy "
                  "machine (other processes on the same cores) is the usual cause."]
    lines += ["", "## Accuracy", "", ACCURACY_NOTE]
    errors = [f"- {row['method']}: {row['error']}" for row in rows if row.get("error")]
    if errors:
        lines += ["", "## Errors", "", *errors]
    return "\n".join(lines) + "\n"
