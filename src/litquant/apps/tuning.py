"""Accuracy-aware tuning: the fastest int8 model within ``max_drop`` points of fp32 validation accuracy.

``litquant quantize --method auto --max_drop 0.1`` answers *how much accuracy may I lose*: it tries candidate
configurations in stages, each only when the cheaper ones missed the budget, and keeps the fastest that meets it.

1. **PTQ grid.** PT2E post-training quantization of one capture of the model, calibrated with each observer of
   ``observers`` (default: ``--quant.observer`` alone when it is set, else ``minmax``, ``histogram``,
   ``percentile``; ``moving_average`` is left out: without training steps it is a smoothed ``minmax``) and
   per-channel weights. Per-tensor weights are tried only for
   the observers whose per-channel candidate met the budget: they are never expected to be more accurate,
   only possibly faster.
2. When no grid candidate meets the budget, two remedies, both measured:

   - **QAT**: PT2E quantization-aware fine-tuning for ``qat_max_steps`` steps (``None``: 100; ``0``: not tried).
   - **fp32 fallback**: the most accurate grid configuration with one layer left in fp32
     (:attr:`~litquant.quantization.calibration.CalibrationConfig.fp32_layers`), once per conv/linear layer.
     The validation accuracy each of these gains over the all-int8 candidate is the layer's measured
     sensitivity; layers are then left in fp32 in that order, one more at a time, until the budget is met or
     ``max_fp32_layers`` are fp32 (default: all but one; at least one layer stays int8).

Every accuracy is measured on the first ``val_batches`` validation batches of 256, against the fp32 model on
the same images; the test split is measured for the kept model only, and reported, never used to choose.

**Latency** is measured only for the candidates that meet the budget, with the compiled runner the report
uses (``load_artifact(compile=True)``: inductor with freezing), at ``latency_batch_size``, in interleaved rounds
(:func:`litquant.apps.bench.measure`). Candidates that differ only in their observer run the same kernels (an
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
    from litquant.apps.tuning import tune
    from litquant.quantization import QuantizeConfig

    result = tune("fp32.ckpt", MNISTDataModule(), "quantized", QuantizeConfig(latency_batch_size=1), max_drop=0.1)
    print(result.met, result.chosen.name, result.path)      # True  ptq histogram per-channel  quantized/auto.pt2
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.fx import GraphModule
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

from litquant.apps.bench import measure
from litquant.apps.tuning_log import Candidate, TuningResult, choose, most_accurate, render_markdown
from litquant.artifacts.description import ArtifactDescription
from litquant.artifacts.files import file_sha256
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.signature import Signature, program_signature
from litquant.cpu import choose_reduce_range
from litquant.data.batches import labelled_batches, sample_count
from litquant.evaluation import evaluate
from litquant.files import write_json, write_text
from litquant.quantization.calibration import OBSERVERS, CalibrationConfig
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.export import refuse_if_changed
from litquant.quantization.methods import QuantizationMethod, get_method, int8_description, prepare_data
from litquant.quantization.model_io import CheckedNet, ModelSpec, checked_net
from litquant.quantization.pt2e import (
    QUANTIZER_NAME,
    capture,
    convert_to_program,
    save_program,
    strip_unused_attributes,
)
from litquant.quantization.ptq import PTQ, calibrate
from litquant.quantization.qat import QAT, quantize_qat

__all__ = ["ARTIFACT_NAME", "PTQ_OBSERVERS", "QAT_STEPS", "tune"]

#: The file name of the kept model in the output folder.
ARTIFACT_NAME = "auto.pt2"
#: The observers of the PTQ grid (``moving_average`` without training steps is a smoothed ``minmax``).
PTQ_OBSERVERS = ("minmax", "histogram", "percentile")
#: Fine-tuning steps of the QAT candidate when ``--quant.qat_max_steps`` is unset.
QAT_STEPS = 100


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _weight_bytes(graph: GraphModule) -> int:
    """Bytes of the tensors the converted graph reads (int8 weights, fp32 biases and fp32 layers)."""
    converted = strip_unused_attributes(convert_pt2e(copy.deepcopy(graph)))
    tensors = list(converted.parameters()) + list(converted.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


class _Tuner:
    """The state one :func:`tune` call shares between its stages."""

    def __init__(self, checked: CheckedNet, datamodule: Any, config: QuantizeConfig, *, max_drop: float,
                 progress: bool) -> None:
        self.checked, self.datamodule, self.config, self.max_drop, self.progress = checked, datamodule, config, \
            max_drop, progress
        self.ptq_method, self.qat_method = get_method(PTQ.name), get_method(QAT.name)
        self.batches = list(labelled_batches(datamodule, "train", limit=config.calibration_batches, shuffle=True))
        self.example = checked.example
        self.captured = capture(checked.net, *self.example, train=False)
        self.fp32_accuracy = self.evaluate(checked.net, "val", config.val_batches)
        self.candidates: list[Candidate] = []

    def evaluate(self, model: Any, split: str, batches: int | None) -> float:
        """Top-1 accuracy of ``model`` (fed and read as the checked network) on ``batches`` batches of ``split``."""
        return evaluate(model, self.datamodule, split, 256, batches, inputs=self.checked.inputs,
                        logits=self.checked.logits)

    def signature(self, program: torch.export.ExportedProgram) -> Signature:
        """Every input and output of an int8 program, the class logits marked."""
        return program_signature(program, self.checked.logits_index)

    def score(self, candidate: Candidate, model: Any) -> Candidate:
        candidate.val_accuracy = self.evaluate(model, "val", self.config.val_batches)
        candidate.drop_points = round((self.fp32_accuracy - candidate.val_accuracy) * 100, 6)
        candidate.status = "met" if candidate.drop_points <= self.max_drop + 1e-9 else "missed"
        candidate.note = (f"within {self.max_drop:g} points" if candidate.met
                          else f"drops {candidate.drop_points:.2f} points > {self.max_drop:g}")
        self.candidates.append(candidate)
        _note(self.progress, f"auto: {candidate.name}: val_acc {candidate.val_accuracy:.4f} "
                             f"(fp32 {self.fp32_accuracy:.4f}), {candidate.status}")
        return candidate

    def ptq(self, calibration: CalibrationConfig, stage: str) -> Candidate:
        candidate = Candidate(self.ptq_method, calibration, stage)
        candidate.graph = calibrate(self.captured, self.batches, calibration, inputs=self.checked.inputs)
        converted = convert_pt2e(copy.deepcopy(candidate.graph))
        candidate.weight_bytes = _weight_bytes(candidate.graph)
        return self.score(candidate, converted)

    def qat(self, calibration: CalibrationConfig, max_steps: int) -> Candidate:
        candidate = Candidate(self.qat_method, calibration, "qat")
        config = self.config.replace(qat_epochs=1, qat_max_steps=max_steps, observer=calibration.observer,
                                     per_channel=calibration.per_channel, fp32_layers=calibration.fp32_layers)
        fresh = dataclasses.replace(self.checked, net=copy.deepcopy(self.checked.net))  # fine-tuned in place
        program = quantize_qat(fresh, self.datamodule, config, progress=self.progress)
        candidate.graph = program
        candidate.weight_bytes = sum(t.numel() * t.element_size() for t in program.state_dict.values())
        return self.score(candidate, program.module())

    def program(self, candidate: Candidate) -> torch.export.ExportedProgram:
        if isinstance(candidate.graph, torch.export.ExportedProgram):
            return candidate.graph
        return convert_to_program(candidate.graph, *self.example)


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


Describe = Callable[..., ArtifactDescription]


def _time_finalists(tuner: _Tuner, finalists: list[Candidate], scratch: Path, description: Describe) -> None:
    """Compile and time one candidate per distinct graph (the most accurate); the others share its time."""
    batch_size = tuner.config.latency_batch_size
    groups: dict[tuple, list[Candidate]] = {}
    for candidate in sorted(finalists, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers))):
        groups.setdefault((candidate.method.name, *candidate.structure), []).append(candidate)
    models, representatives = {}, {}
    for index, members in enumerate(groups.values()):
        head = members[0]
        program = tuner.program(head)
        path = save_program(program, scratch / f"candidate{index}.pt2",
                            description(head.method, head.calibration, signature=tuner.signature(program)))
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


def _search(tuner: _Tuner, base: CalibrationConfig, observers: Sequence[str], layers: Sequence[str],
            max_fp32: int) -> None:
    """The candidates, stage by stage: the PTQ grid; when none of it met the budget, QAT and the fp32 fallback."""
    # 1. the PTQ grid: each observer with per-channel weights, per-tensor weights where that met the budget
    grid = [tuner.ptq(dataclasses.replace(base, observer=observer), "grid") for observer in observers]
    grid += [tuner.ptq(dataclasses.replace(c.calibration, per_channel=False), "grid") for c in list(grid) if c.met]
    if any(c.met for c in grid):
        return
    # 2. no grid candidate met it: QAT, and the most accurate grid configuration with layers left in fp32
    steps = QAT_STEPS if tuner.config.qat_max_steps is None else tuner.config.qat_max_steps
    if steps:
        tuner.qat(base, steps)
    if max_fp32:
        _fallback(tuner, most_accurate(grid), layers, max_fp32)


def tune(checkpoint: str | os.PathLike, datamodule: Any, out_dir: str | os.PathLike,
         config: QuantizeConfig | None = None, *, max_drop: float = 0.1, observers: Sequence[str] | None = None,
         test_batches: int | None = 8, latency_tolerance: float = 0.05, progress: bool = True,
         model: ModelSpec | None = None) -> TuningResult:
    """Tune the int8 configuration of ``checkpoint`` (see the module docstring) and write ``<out>/auto.pt2``,
    ``<out>/tuning.json`` and ``<out>/tuning.md``.

    Args:
        checkpoint: a Lightning checkpoint of ``model.module_class`` (default
            :class:`~litquant.model.MNISTClassifier`).
        datamodule: the data: training split for calibration and QAT, validation split for every decision,
            test split for the report of the kept model (batches of ``(inputs, target)``,
            :mod:`litquant.data.batches`).
        out_dir: folder of the artifact and the tuning log.
        config: the options (default :class:`QuantizeConfig`): ``calibration_batches`` per PTQ candidate,
            ``val_batches`` (of 256) every accuracy is measured on, ``latency_batch_size``, ``percentile``,
            ``qat_max_steps`` of the QAT candidate (``None``: :data:`QAT_STEPS`, ``0``: no QAT) and ``qat_lr``,
            ``max_fp32_layers`` (default: all but one), ``reduce_range`` (resolved once for this CPU, used by
            every candidate). ``observer``, when set, is the grid's only observer.
        max_drop: the validation accuracy the int8 model may lose, in points (0.1: 0.1 %).
        observers: the activation observers of the PTQ grid (default: see ``config``).
        test_batches: test batches (of 256) the kept model is reported on (``None``: the whole split).
        latency_tolerance: relative latency difference counted as equally fast (see
            :func:`~litquant.apps.tuning_log.choose`).
        progress: one line per candidate on stderr.
        model: the LightningModule class the checkpoint is loaded into and its class-logits output
            (:class:`~litquant.quantization.model_io.ModelSpec`).

    Raises:
        ValueError: ``max_drop`` is not finite, ``observers`` is empty or names an unknown observer, or
            ``config.fp32_layers`` is set (the tuner chooses the fp32 layers itself).
    """
    config = config or QuantizeConfig()
    if observers is None:
        observers = (config.observer,) if config.observer else PTQ_OBSERVERS
    if not observers:
        raise ValueError("observers is empty: give at least one of " + ", ".join(OBSERVERS))
    if not math.isfinite(max_drop):
        raise ValueError(f"max_drop must be a finite number of points, got {max_drop}")
    if unknown := [o for o in observers if o not in OBSERVERS]:
        raise ValueError(f"unknown observer {', '.join(unknown)}: choose from {', '.join(OBSERVERS)}")
    if config.fp32_layers:
        raise ValueError("fp32_layers does not apply to tuning, which chooses the layers left in fp32 itself")
    range_choice = choose_reduce_range(config.reduce_range)
    config = config.replace(reduce_range=range_choice.reduce_range)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepare_data(datamodule)
    sha256 = file_sha256(checkpoint)
    checked = checked_net(checkpoint, datamodule, model)
    layers = [name for name, m in checked.net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    max_fp32 = len(layers) - 1 if config.max_fp32_layers is None else min(config.max_fp32_layers, len(layers) - 1)
    _note(progress, f"auto: tuning {checkpoint} for a drop of at most {max_drop:g} points of validation accuracy")
    tuner = _Tuner(checked, datamodule, config, max_drop=max_drop, progress=progress)
    _search(tuner, config.replace(observer=None, per_channel=True).calibration, observers, layers, max_fp32)
    candidates = tuner.candidates
    finalists = [c for c in candidates if c.met]

    def description(method: QuantizationMethod, calibration: CalibrationConfig, **extra: Any) -> ArtifactDescription:
        return int8_description(method, datamodule=datamodule, checkpoint=checkpoint, checkpoint_sha256=sha256,
                                calibration=calibration, range_choice=range_choice, quantizer=QUANTIZER_NAME, **extra)

    with tempfile.TemporaryDirectory(prefix="litquant-auto-") as scratch:
        if finalists:
            _time_finalists(tuner, finalists, Path(scratch), description)
    chosen = choose(finalists, latency_tolerance)
    met = chosen is not None
    if chosen is None:
        chosen = most_accurate(candidates)
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
    samples = sample_count(datamodule, "val", 256, config.val_batches)
    test = {"int8": tuner.evaluate(program.module(), "test", test_batches),
            "fp32": tuner.evaluate(checked.net, "test", test_batches),
            "samples": sample_count(datamodule, "test", 256, test_batches)}
    qat_steps = QAT_STEPS if config.qat_max_steps is None else config.qat_max_steps
    log = {"max_drop_points": max_drop, "met": met, "chosen": chosen.name, "split": "val", "val_samples": samples,
           "fp32_val_accuracy": tuner.fp32_accuracy, "latency_batch_size": config.latency_batch_size,
           "latency_threads": torch.get_num_threads(), "latency_runner": "torch.compile (inductor, freezing)",
           "latency_tolerance": latency_tolerance, "calibration_batches": config.calibration_batches,
           "qat_max_steps": qat_steps, "max_fp32_layers": max_fp32,
           "test_report": {"split": "test", **test, "note": "reported only, never used to choose"},
           "candidates": [c.to_dict() for c in candidates], "seconds": round(time.perf_counter() - start, 1)}
    extra: dict[str, Any] = ({"fine_tuning": {"epochs": 1, "max_steps": qat_steps, "lr": config.qat_lr}}
                             if chosen.method is tuner.qat_method else
                             {"calibration_batches": config.calibration_batches})
    accuracy = {"split": "val", "samples": samples, "int8": chosen.val_accuracy, "fp32": tuner.fp32_accuracy,
                "test": test}
    refuse_if_changed(checkpoint, sha256)
    path = save_program(program, out_dir / ARTIFACT_NAME,
                        description(chosen.method, chosen.calibration, accuracy=accuracy, tuning=log,
                                    signature=tuner.signature(program), **extra))
    log["artifact"] = {"path": path.name, "sha256": file_sha256(path)}
    files = {"json": write_json(out_dir / "tuning.json", log),
             "markdown": write_text(out_dir / "tuning.md", render_markdown(log, Path(checkpoint).name))}
    _note(progress, f"auto: kept {chosen.name}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in "
                    f"{time.perf_counter() - start:.0f} s")
    return TuningResult(path, met, chosen, candidates, log, files)
