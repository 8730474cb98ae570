"""Accuracy-aware tuning: the fastest int8 model within ``max_drop`` points of fp32 validation accuracy.

``litquant quantize --method auto --max_drop 0.1`` answers *how much accuracy may I lose*: it tries candidate
configurations in stages, each only when the cheaper ones missed the budget, and keeps the fastest that meets it.

1. **PTQ grid.** PT2E post-training quantization of one capture of the model, calibrated with each observer of
   ``observers`` (default ``minmax``, ``histogram``, ``percentile``; ``moving_average`` is left out: without
   training steps it is a smoothed ``minmax``) and per-channel weights. Per-tensor weights are tried only for
   the observers whose per-channel candidate met the budget: they are never expected to be more accurate,
   only possibly faster.
2. When no grid candidate meets the budget, two remedies, both measured:

   - **QAT**: PT2E quantization-aware fine-tuning for ``qat_max_steps`` steps (``0``: not tried).
   - **fp32 fallback**: the most accurate grid configuration with one layer left in fp32
     (:attr:`~litquant.quantization.calibration.CalibrationConfig.fp32_layers`), once per conv/linear layer.
     The validation accuracy each of these gains over the all-int8 candidate is the layer's measured
     sensitivity; layers are then left in fp32 in that order, one more at a time, until the budget is met or
     ``max_fp32_layers`` are fp32 (default: all but one; at least one layer stays int8).

Every accuracy is measured on the first ``val_batches`` validation batches of 256, against the fp32 model on
the same images; the test split is measured for the kept model only, and reported, never used to choose.

**Latency** is measured only for the candidates that meet the budget, with the compiled runner the report
uses (``load_artifact(compile=True)``: inductor with freezing), at ``latency_batch_size``, in interleaved rounds
(:func:`litquant.bench.measure`). Candidates that differ only in their observer run the same kernels (an
observer changes scale values, not the graph), so one of them (the most accurate) is compiled and timed per
distinct graph, and the others share its time. The kept candidate is the fastest; candidates within
``latency_tolerance`` (default 5 %, the timing noise of a shared machine) of the fastest count as equally fast,
and among those the most accurate wins, then the simplest (fewer fp32 layers, PTQ before QAT).

The kept model is written as ``<out>/auto.pt2`` (method ``ptq`` or ``qat``; the whole tuning log is in its
description as ``tuning``), with ``<out>/tuning.json`` and ``<out>/tuning.md`` beside it. When no candidate meets
the budget, the most accurate is written all the same and :attr:`TuningResult.met` is false (the CLI then
exits 1).

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.tuning import tune

    result = tune("fp32.ckpt", MNISTDataModule(), "quantized", max_drop=0.1, latency_batch_size=1)
    print(result.met, result.chosen.name, result.path)      # True  ptq histogram per-channel  quantized/auto.pt2
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.fx import GraphModule

from litquant.cpu import ReduceRange
from litquant.files import write_json, write_text
from litquant.quantization.calibration import OBSERVERS, CalibrationConfig

__all__ = ["ARTIFACT_NAME", "PTQ_OBSERVERS", "Candidate", "TuningResult", "choose", "format_table", "tune"]

#: The file name of the kept model in the output folder.
ARTIFACT_NAME = "auto.pt2"
#: The observers of the PTQ grid (``moving_average`` without training steps is a smoothed ``minmax``).
PTQ_OBSERVERS = ("minmax", "histogram", "percentile")


@dataclass
class Candidate:
    """One configuration tried, and what was measured for it.

    ``status`` is ``kept``, ``met`` (within the budget, not kept), ``missed`` (outside the budget) or
    ``failed``; ``note`` says why, in words.
    """

    method: str
    calibration: CalibrationConfig
    stage: str
    val_accuracy: float | None = None
    drop_points: float | None = None
    weight_bytes: int | None = None
    latency_ms: float | None = None
    latency_spread: float | None = None
    size_bytes: int | None = None
    status: str = "missed"
    note: str = ""
    graph: Any = field(default=None, repr=False)  # the calibrated PT2E graph, or the QAT program

    @property
    def name(self) -> str:
        weights = "per-channel" if self.calibration.per_channel else "per-tensor"
        name = f"{self.method} {self.calibration.resolved(self.method).observer} {weights}"
        return name + (f" + fp32 {','.join(self.calibration.fp32_layers)}" if self.calibration.fp32_layers else "")

    @property
    def met(self) -> bool:
        return self.status in ("met", "kept")

    @property
    def structure(self) -> tuple[bool, tuple[str, ...]]:
        """What decides the int8 graph's kernels: weight granularity and the fp32 layers."""
        return self.calibration.per_channel, tuple(sorted(self.calibration.fp32_layers))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "stage": self.stage,
                "calibration": self.calibration.describe(self.method), "val_accuracy": self.val_accuracy,
                "drop_points": self.drop_points, "weight_bytes": self.weight_bytes, "latency_ms": self.latency_ms,
                "latency_spread": self.latency_spread, "size_bytes": self.size_bytes, "status": self.status,
                "note": self.note}


@dataclass
class TuningResult:
    """What :func:`tune` wrote and found."""

    path: Path
    met: bool
    chosen: Candidate
    candidates: list[Candidate]
    log: dict[str, Any]
    files: dict[str, Path]


def _note(progress: bool, message: str) -> None:
    if progress:
        import sys

        print(message, file=sys.stderr, flush=True)


def _weight_bytes(graph: GraphModule) -> int:
    """Bytes of the tensors the converted graph reads (int8 weights, fp32 biases and fp32 layers)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from litquant.quantization.pt2e import strip_unused_attributes

    converted = strip_unused_attributes(convert_pt2e(copy.deepcopy(graph)))
    tensors = list(converted.parameters()) + list(converted.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def choose(candidates: Sequence[Candidate], latency_tolerance: float = 0.05) -> Candidate | None:
    """The kept candidate among those that met the budget and were timed: the fastest, where every candidate
    within ``latency_tolerance`` of the fastest counts as equally fast and the most accurate of those wins,
    then the one with fewer fp32 layers, then PTQ before QAT. ``None`` when none met the budget."""
    timed = [c for c in candidates if c.status in ("met", "kept") and c.latency_ms is not None]
    if not timed:
        return None
    fastest = min(c.latency_ms for c in timed)
    tied = [c for c in timed if c.latency_ms <= fastest * (1 + latency_tolerance)]
    return min(tied, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers), c.method != "ptq",
                                    c.latency_ms))


def _most_accurate(candidates: Sequence[Candidate]) -> Candidate:
    scored = [c for c in candidates if c.val_accuracy is not None]
    return min(scored, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers), c.method != "ptq"))


class _Tuner:
    """The state one :func:`tune` call shares between its stages."""

    def __init__(self, net: torch.nn.Module, datamodule: Any, *, max_drop: float, calibration_batches: int,
                 val_batches: int, progress: bool) -> None:
        from litquant.evaluation import evaluate
        from litquant.quantization.pt2e import capture

        self.net, self.datamodule, self.max_drop, self.progress = net, datamodule, max_drop, progress
        self.val_batches = val_batches
        self.batches = list(datamodule.normalized_batches("train", limit=calibration_batches, shuffle=True))
        self.example = (self.batches[0][0][:2].clone(),)
        self.captured = capture(net, self.example, train=False)
        self.fp32_accuracy = evaluate(net, datamodule, "val", 256, val_batches)
        self.candidates: list[Candidate] = []

    def score(self, candidate: Candidate, model: Any) -> Candidate:
        from litquant.evaluation import evaluate

        candidate.val_accuracy = evaluate(model, self.datamodule, "val", 256, self.val_batches)
        candidate.drop_points = round((self.fp32_accuracy - candidate.val_accuracy) * 100, 6)
        candidate.status = "met" if candidate.drop_points <= self.max_drop + 1e-9 else "missed"
        candidate.note = (f"within {self.max_drop:g} points" if candidate.met
                          else f"drops {candidate.drop_points:.2f} points > {self.max_drop:g}")
        self.candidates.append(candidate)
        _note(self.progress, f"auto: {candidate.name}: val_acc {candidate.val_accuracy:.4f} "
                             f"(fp32 {self.fp32_accuracy:.4f}), {candidate.status}")
        return candidate

    def ptq(self, calibration: CalibrationConfig, stage: str) -> Candidate:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        from litquant.quantization.ptq import calibrate

        candidate = Candidate("ptq", calibration, stage)
        candidate.graph = calibrate(self.captured, self.batches, calibration)
        converted = convert_pt2e(copy.deepcopy(candidate.graph))
        candidate.weight_bytes = _weight_bytes(candidate.graph)
        return self.score(candidate, converted)

    def qat(self, calibration: CalibrationConfig, max_steps: int, lr: float) -> Candidate:
        from litquant.quantization.qat import quantize_qat

        candidate = Candidate("qat", calibration, "qat")
        program = quantize_qat(copy.deepcopy(self.net), self.datamodule, epochs=1, max_steps=max_steps, lr=lr,
                               calibration=calibration, progress=self.progress)
        candidate.graph = program
        candidate.weight_bytes = sum(t.numel() * t.element_size() for t in program.state_dict.values())
        return self.score(candidate, program.module())

    def program(self, candidate: Candidate) -> torch.export.ExportedProgram:
        from litquant.quantization.pt2e import convert_to_program

        if isinstance(candidate.graph, torch.export.ExportedProgram):
            return candidate.graph
        return convert_to_program(candidate.graph, self.example)


def _fallback(tuner: _Tuner, base: Candidate, layers: Sequence[str], max_fp32_layers: int) -> None:
    """Measure each layer's sensitivity (the accuracy gained with it alone in fp32), then leave layers in fp32
    in that order, one more at a time, until a candidate meets the budget or ``max_fp32_layers`` are fp32."""
    probes = {}
    for layer in layers:
        probe = tuner.ptq(dataclasses.replace(base.calibration, fp32_layers=(layer,)), "sensitivity")
        gain = (probe.val_accuracy - base.val_accuracy) * 100
        probe.note += f"; sensitivity of {layer}: {gain:+.2f} points"
        probes[layer] = (gain, probe)
    order = sorted(layers, key=lambda name: -probes[name][0])  # stable: model order among equal gains
    if any(probe.met for _, probe in probes.values()):
        return
    for count in range(2, max_fp32_layers + 1):
        candidate = tuner.ptq(dataclasses.replace(base.calibration, fp32_layers=tuple(order[:count])), "fallback")
        if candidate.met:
            return


def _time_finalists(tuner: _Tuner, finalists: list[Candidate], scratch: Path, batch_size: int,
                    description: Any) -> None:
    """Compile and time one candidate per distinct graph (the most accurate); the others share its time."""
    from litquant.artifacts.loading import load_artifact
    from litquant.bench import measure
    from litquant.quantization.pt2e import save_program

    groups: dict[tuple, list[Candidate]] = {}
    for candidate in sorted(finalists, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers))):
        groups.setdefault((candidate.method == "qat", *candidate.structure), []).append(candidate)
    models, representatives = {}, {}
    for index, members in enumerate(groups.values()):
        head = members[0]
        path = save_program(tuner.program(head), scratch / f"candidate{index}.pt2",
                            description(head.method, head.calibration))
        head.size_bytes = path.stat().st_size
        _note(tuner.progress, f"auto: compiling {head.name} for batch {batch_size} ...")
        models[head.name] = {torch.get_num_threads(): load_artifact(path, compile=True, progress=False)}
        representatives[head.name] = members
    rows = measure(models, [batch_size], [torch.get_num_threads()], rounds=5, calls=20)
    for row in rows:
        members = representatives[row["model"]]
        for member in members:
            member.latency_ms, member.latency_spread = row["p50_ms"], row["spread"]
            if member is not members[0]:
                member.size_bytes = members[0].size_bytes
                member.note += f"; same kernels as {members[0].name} (timed once)"


def tune(checkpoint: str | os.PathLike, datamodule: Any, out_dir: str | os.PathLike, *, max_drop: float = 0.1,
         latency_batch_size: int = 1, observers: Sequence[str] = PTQ_OBSERVERS, percentile: float = 99.99,
         calibration_batches: int = 32, val_batches: int = 8, test_batches: int | None = 8,
         qat_max_steps: int = 100, qat_lr: float = 1e-4, max_fp32_layers: int | None = None,
         latency_tolerance: float = 0.05, reduce_range: ReduceRange = "auto", progress: bool = True) -> TuningResult:
    """Tune the int8 configuration of ``checkpoint`` (see the module docstring) and write ``<out>/auto.pt2``,
    ``<out>/tuning.json`` and ``<out>/tuning.md``.

    Args:
        checkpoint: a Lightning checkpoint of :class:`~litquant.model.MNISTClassifier`.
        datamodule: the data: training split for calibration and QAT, validation split for every decision,
            test split for the report of the kept model.
        out_dir: folder of the artifact and the tuning log.
        max_drop: the validation accuracy the int8 model may lose, in points (0.1: 0.1 %).
        latency_batch_size: the batch size the latency is measured at.
        observers: the activation observers of the PTQ grid.
        percentile: the percentile of the ``percentile`` observer.
        calibration_batches: training batches calibrating each PTQ candidate.
        val_batches: validation batches (of 256) every accuracy is measured on.
        test_batches: test batches (of 256) the kept model is reported on (``None``: the whole split).
        qat_max_steps: fine-tuning steps of the QAT candidate (``0``: no QAT).
        qat_lr: its learning rate.
        max_fp32_layers: the most layers the fallback leaves in fp32 (default: all but one).
        latency_tolerance: relative latency difference counted as equally fast (see :func:`choose`).
        reduce_range: ``"auto"``, ``True`` or ``False``, resolved once for this CPU
            (:func:`litquant.cpu.choose_reduce_range`) and used by every candidate.
        progress: one line per candidate on stderr.
    """
    from litquant.artifacts.files import file_sha256
    from litquant.cpu import choose_reduce_range
    from litquant.evaluation import evaluate
    from litquant.quantization.export import checked_net, refuse_if_changed
    from litquant.quantization.methods import int8_description
    from litquant.quantization.pt2e import QUANTIZER_NAME, save_program

    if not math.isfinite(max_drop):
        raise ValueError(f"max_drop must be a finite number of points, got {max_drop}")
    if unknown := [o for o in observers if o not in OBSERVERS]:
        raise ValueError(f"unknown observer {', '.join(unknown)}: choose from {', '.join(OBSERVERS)}")
    if not observers:
        raise ValueError("observers is empty: give at least one of " + ", ".join(OBSERVERS))
    for name, value in (("latency_batch_size", latency_batch_size), ("calibration_batches", calibration_batches),
                        ("val_batches", val_batches)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if qat_max_steps < 0 or (max_fp32_layers is not None and max_fp32_layers < 0):
        raise ValueError("qat_max_steps and max_fp32_layers must not be negative")
    range_choice = choose_reduce_range(reduce_range)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    datamodule.setup("fit")
    sha256 = file_sha256(checkpoint)
    net = checked_net(checkpoint, datamodule)
    layers = [name for name, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    max_fp32 = len(layers) - 1 if max_fp32_layers is None else min(max_fp32_layers, len(layers) - 1)
    _note(progress, f"auto: tuning {checkpoint} for a drop of at most {max_drop:g} points of validation accuracy")
    tuner = _Tuner(net, datamodule, max_drop=max_drop, calibration_batches=calibration_batches,
                   val_batches=val_batches, progress=progress)

    # 1. the PTQ grid: each observer with per-channel weights, per-tensor weights where that met the budget
    base = CalibrationConfig(percentile=percentile, reduce_range=range_choice.reduce_range)
    grid = [tuner.ptq(dataclasses.replace(base, observer=observer), "grid") for observer in observers]
    grid += [tuner.ptq(dataclasses.replace(c.calibration, per_channel=False), "grid") for c in list(grid) if c.met]
    # 2. no grid candidate met it: QAT, and the most accurate grid configuration with layers left in fp32
    if not any(c.met for c in grid):
        if qat_max_steps:
            tuner.qat(base, qat_max_steps, qat_lr)
        if max_fp32:
            _fallback(tuner, _most_accurate(grid), layers, max_fp32)
    candidates = tuner.candidates
    finalists = [c for c in candidates if c.met]

    def description(method: str, calibration: CalibrationConfig, **extra: Any):
        return int8_description(method, datamodule=datamodule, checkpoint=checkpoint, checkpoint_sha256=sha256,
                                calibration=calibration, range_choice=range_choice,
                                quantizer=QUANTIZER_NAME, **extra)

    with tempfile.TemporaryDirectory(prefix="litquant-auto-") as scratch:
        if finalists:
            _time_finalists(tuner, finalists, Path(scratch), latency_batch_size, description)
    chosen = choose(finalists, latency_tolerance)
    met = chosen is not None
    if chosen is None:
        chosen = _most_accurate(candidates)
        chosen.note = f"nothing met the budget: kept as the most accurate ({chosen.note})"
    else:
        for candidate in finalists:
            if candidate is not chosen:
                slower = candidate.latency_ms > chosen.latency_ms * (1 + latency_tolerance)
                candidate.note += ("; slower than the kept one" if slower else
                                   "; as fast as the kept one (within the tolerance), less accurate or simpler")
        chosen.note += "; the fastest within the budget"
    chosen.status = "kept"

    program = tuner.program(chosen)
    samples = min(len(datamodule.split("val")), val_batches * 256)
    test = {"int8": evaluate(program.module(), datamodule, "test", 256, test_batches),
            "fp32": evaluate(net, datamodule, "test", 256, test_batches),
            "samples": len(datamodule.split("test")) if test_batches is None
            else min(len(datamodule.split("test")), test_batches * 256)}
    log = {"max_drop_points": max_drop, "met": met, "chosen": chosen.name, "split": "val", "val_samples": samples,
           "fp32_val_accuracy": tuner.fp32_accuracy, "latency_batch_size": latency_batch_size,
           "latency_threads": torch.get_num_threads(), "latency_runner": "torch.compile (inductor, freezing)",
           "latency_tolerance": latency_tolerance, "calibration_batches": calibration_batches,
           "qat_max_steps": qat_max_steps, "max_fp32_layers": max_fp32,
           "test_report": {"split": "test", **test, "note": "reported only, never used to choose"},
           "candidates": [c.to_dict() for c in candidates], "seconds": round(time.perf_counter() - start, 1)}
    extra: dict[str, Any] = ({"fine_tuning": {"epochs": 1, "max_steps": qat_max_steps, "lr": qat_lr}}
                             if chosen.method == "qat" else {"calibration_batches": calibration_batches})
    accuracy = {"split": "val", "samples": samples, "int8": chosen.val_accuracy, "fp32": tuner.fp32_accuracy,
                "test": test}
    refuse_if_changed(checkpoint, sha256)
    path = save_program(program, out_dir / ARTIFACT_NAME,
                        description(chosen.method, chosen.calibration, accuracy=accuracy, tuning=log, **extra))
    log["artifact"] = {"path": path.name, "sha256": file_sha256(path)}
    files = {"json": write_json(out_dir / "tuning.json", log),
             "markdown": write_text(out_dir / "tuning.md", render_markdown(log, Path(checkpoint).name))}
    _note(progress, f"auto: kept {chosen.name}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in "
                    f"{time.perf_counter() - start:.0f} s")
    return TuningResult(path, met, chosen, candidates, log, files)


def _cell(value: Any, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def format_table(log: dict[str, Any]) -> str:
    """The candidates of a tuning log as a Markdown table, in the order they were tried."""
    lines = [f"| candidate | stage | val acc | drop (points) | latency, batch {log['latency_batch_size']} "
             "| weights (KB) | result |", "|---|---|---:|---:|---:|---:|---|"]
    for c in log["candidates"]:
        latency = "" if c["latency_ms"] is None else f"{c['latency_ms']:.3f} ms"
        lines.append(f"| {c['name']} | {c['stage']} | {_cell(c['val_accuracy'], '.4f')} | "
                     f"{_cell(c['drop_points'], '.2f')} | {latency} | "
                     f"{_cell(c['weight_bytes'] and c['weight_bytes'] / 1024, '.1f')} | "
                     f"**{c['status']}**: {c['note']} |")
    return "\n".join(lines)


def summary(log: dict[str, Any]) -> str:
    """One sentence: what was kept and whether it met the budget."""
    chosen = next(c for c in log["candidates"] if c["status"] == "kept")
    verdict = "within" if log["met"] else "NOT within"
    return (f"kept {chosen['name']}: val_acc {chosen['val_accuracy']:.4f} (fp32 {log['fp32_val_accuracy']:.4f}, "
            f"drop {chosen['drop_points']:.2f} points, {verdict} --max_drop {log['max_drop_points']:g}) on "
            f"{log['val_samples']} validation images")


def render_markdown(log: dict[str, Any], checkpoint_name: str) -> str:
    test = log["test_report"]
    return "\n".join([
        f"# Tuning: {checkpoint_name}", "",
        f"Budget: at most {log['max_drop_points']:g} points of validation accuracy below fp32 "
        f"({log['fp32_val_accuracy']:.4f} on {log['val_samples']} images). Latency: compiled runner, batch "
        f"{log['latency_batch_size']}, {log['latency_threads']} threads; candidates within "
        f"{log['latency_tolerance']:.0%} of the fastest count as equally fast.", "",
        summary(log) + ".", "",
        format_table(log), "",
        f"Test split (reported, not used to choose): int8 {test['int8']:.4f}, fp32 {test['fp32']:.4f} on "
        f"{test['samples']} images.", ""])
