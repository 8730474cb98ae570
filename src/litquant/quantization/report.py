"""The quantization results: every method run, every claim checked by doing it, one table.

:func:`build_report` exports the fp32 model, quantizes it with each method, and for each model (fp32 first)
evaluates it with a plain PyTorch loop and with a Lightning ``Trainer``, times it at batch 1 and 256,
reloads it in a fresh Python process, and writes ``report.json`` (a list, one entry per model) and
``report.md`` (the original tutorial's compatibility table with the numbers added). A method that fails gets ``false``
booleans and an ``error`` string; the others still run.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.report import build_report

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

from litquant.artifacts import load_artifact, read_description
from litquant.evaluation import ArtifactModule, evaluate, measure_latency
from litquant.files import write_json, write_text
from litquant.fresh_process import check_all_in_fresh_process
from litquant.quantization import METHODS, QuantizeConfig, artifact_name, export_fp32, get_method, quantize

__all__ = ["REPORT_KEYS", "build_report", "label", "render_markdown"]

#: Keys of every ``report.json`` entry.
REPORT_KEYS = ("method", "artifact", "test_acc", "size_bytes", "latency_ms_b1", "latency_ms_b256",
               "pytorch_inference", "trainer_inference", "saved", "reloaded_in_fresh_process")


def label(method: str) -> str:
    """A model's name in the table: the registered method's label (the original tutorial's names)."""
    if method == "fp32":
        return "fp32 (not quantized)"
    return METHODS[method].label if method in METHODS else method


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0]


def _empty_row(method: str, artifact: Path | None) -> dict[str, Any]:
    return {"method": method, "artifact": artifact.name if artifact else None, "test_acc": None, "size_bytes": None,
            "latency_ms_b1": None, "latency_ms_b256": None, "pytorch_inference": False,
            "trainer_inference": False, "saved": False, "reloaded_in_fresh_process": False}


def _trainer_accuracy(model: Any, datamodule: Any) -> float:
    """Test accuracy of a loaded artifact through ``Trainer.test``."""
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(ArtifactModule(model), datamodule=datamodule, verbose=False)
    accuracy = float(results[0]["test_acc"])
    if not math.isfinite(accuracy):
        raise ValueError(f"Trainer.test gave test_acc={accuracy}")
    return accuracy


def _measure(row: dict[str, Any], path: Path, datamodule: Any, *, compile: bool, threads: int,
             latency_repeats: int, progress: bool) -> None:
    """Fill ``row`` by loading, evaluating (both ways) and timing the artifact; record the first error."""
    row["saved"] = path.is_file() and path.stat().st_size > 0 and read_description(path).method == row["method"]
    row["size_bytes"] = path.stat().st_size
    model = load_artifact(path, compile=compile, threads=threads, progress=progress)
    row["runtime"] = ("onnxruntime" if model.kind == "onnx"
                      else "torch.compile (inductor, freezing)" if compile else "torch.export graph, eager kernels")
    steps = (
        ("pytorch_inference", lambda: row.update(test_acc=evaluate(model, datamodule, "test", 256))),
        ("trainer_inference", lambda: row.update(trainer_test_acc=_trainer_accuracy(model, datamodule))),
        ("latency", lambda: row.update(
            latency_ms_b1=measure_latency(model, 1, threads, repeats=latency_repeats * 5),
            latency_ms_b256=measure_latency(model, 256, threads, repeats=latency_repeats))),
    )
    for key, step in steps:
        _note(progress, f"report: {row['method']}: {key.replace('_', ' ')} ...")
        try:
            step()
            if key != "latency":
                row[key] = True
        except Exception as err:  # noqa: BLE001 - the report records it and goes on
            row.setdefault("error", f"{key}: {_error(err)}")
            if progress:
                traceback.print_exc(file=sys.stderr)


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
        threads: CPU threads for inference and timing.
        fresh_process_check: reload every artifact in a new Python process (a real subprocess).
        compile: run ``.pt2`` int8 models compiled with inductor (their fast path); the fp32 ``.pt2`` runs
            uncompiled, as the fp32 eager baseline.
        latency_repeats: timed calls at batch 256 (five times as many at batch 1).
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
            _measure(row, path, datamodule, compile=compile and method != "fp32", threads=threads,
                     latency_repeats=latency_repeats, progress=progress)
        except Exception as err:  # noqa: BLE001
            row.setdefault("error", f"load: {_error(err)}")
        rows.append(row)
        paths.append(path)
    if fresh_process_check:
        existing = [p for p in paths if p is not None and p.is_file()]
        _note(progress, f"report: reloading {len(existing)} artifacts in a fresh process ...")
        checks = iter(check_all_in_fresh_process(existing, datamodule.data_dir, dataset=datamodule.spec.name))
        for row, path in zip(rows, paths, strict=True):
            if path is not None and path.is_file():
                check = next(checks)
                row["reloaded_in_fresh_process"] = bool(check["ok"])
                row["fresh_process_accuracy"] = check["accuracy"]
                if not check["ok"]:
                    row.setdefault("error", f"fresh process: {check['error']}")
    fp32_latency = rows[0].get("latency_ms_b256")
    for row in rows:
        if fp32_latency and row.get("latency_ms_b256"):
            row["speedup_b256_vs_fp32"] = round(fp32_latency / row["latency_ms_b256"], 2)
        row["threads"] = threads
    write_json(out_dir / "report.json", rows)
    write_text(out_dir / "report.md", render_markdown(rows))
    _note(progress, f"report: wrote {out_dir / 'report.json'} and {out_dir / 'report.md'} "
                    f"in {time.perf_counter() - started:.0f} s")
    return rows


def _yes(value: Any) -> str:
    return "Available" if value else "**Unavailable**"


def _number(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The original tutorial's compatibility table, with accuracy, size and latency added."""
    fp32_size = rows[0].get("size_bytes") if rows and rows[0]["method"] == "fp32" else None
    lines = [
        "# Quantization report",
        "",
        "| Pattern | Quantization method | Inference with PyTorch | Inference with PyTorch Lightning (Trainer) "
        "| Saving model | Reloaded in a fresh process | Test accuracy | Size (MB) | Size vs fp32 "
        "| Latency b=1 (ms) | Latency b=256 (ms) | Speed-up b=256 |",
        "| :-: | --- | --- | --- | --- | --- | --: | --: | --: | --: | --: | --: |",
    ]
    for index, row in enumerate(rows):
        size = row.get("size_bytes")
        ratio = f"{size / fp32_size:.0%}" if size and fp32_size else "–"
        speedup = row.get("speedup_b256_vs_fp32")
        lines.append(
            f"| {chr(0x2460 + index)} | {label(row['method'])} | {_yes(row['pytorch_inference'])} "
            f"| {_yes(row['trainer_inference'])} | {_yes(row['saved'])} | {_yes(row['reloaded_in_fresh_process'])} "
            f"| {_number(row.get('test_acc'), '.4f')} | {_number(size and size / 1e6, '.2f')} | {ratio} "
            f"| {_number(row.get('latency_ms_b1'), '.2f')} | {_number(row.get('latency_ms_b256'), '.1f')} "
            f"| {'–' if speedup is None else f'{speedup:.1f}×'} |"
        )
    threads = rows[0].get("threads") if rows else None
    lines += ["", f"Latencies are medians of one run on {threads} CPU thread(s); int8 `.pt2` models run compiled "
              "with inductor (freezing), the fp32 `.pt2` runs uncompiled (eager kernels), ONNX Runtime runs its "
              "int8 QDQ model."]
    errors = [f"- {row['method']}: {row['error']}" for row in rows if row.get("error")]
    if errors:
        lines += ["", "## Errors", "", *errors]
    return "\n".join(lines) + "\n"
