"""What a tuning run (:mod:`litquant.apps.tuning`) records: every candidate tried and what was measured for it,
the choice among those that met the budget, and the log as a Markdown table and one sentence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litquant.quantization.calibration import CalibrationConfig
from litquant.quantization.methods import QuantizationMethod
from litquant.quantization.ptq import PTQ

__all__ = ["Candidate", "TuningResult", "choose", "format_table", "most_accurate", "render_markdown", "summary"]


@dataclass
class Candidate:
    """One configuration tried, and what was measured for it.

    ``status`` is ``kept``, ``met`` (within the budget, not kept), ``missed`` (outside the budget) or
    ``failed``; ``note`` says why, in words.
    """

    method: QuantizationMethod
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
        observer = self.calibration.resolved(self.method.default_observer).observer
        name = f"{self.method.name} {observer} {weights}"
        return name + (f" + fp32 {','.join(self.calibration.fp32_layers)}" if self.calibration.fp32_layers else "")

    @property
    def met(self) -> bool:
        return self.status in ("met", "kept")

    @property
    def structure(self) -> tuple[bool, tuple[str, ...]]:
        """What decides the int8 graph's kernels: weight granularity and the fp32 layers."""
        return self.calibration.per_channel, tuple(sorted(self.calibration.fp32_layers))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method.name, "stage": self.stage,
                "calibration": self.calibration.describe(self.method.default_observer),
                "val_accuracy": self.val_accuracy, "drop_points": self.drop_points,
                "weight_bytes": self.weight_bytes, "latency_ms": self.latency_ms,
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


def choose(candidates: Sequence[Candidate], latency_tolerance: float = 0.05) -> Candidate | None:
    """The kept candidate among those that met the budget and were timed: the fastest, where every candidate
    within ``latency_tolerance`` of the fastest counts as equally fast and the most accurate of those wins,
    then the one with fewer fp32 layers, then PTQ before QAT. ``None`` when none met the budget."""
    timed = [c for c in candidates if c.status in ("met", "kept") and c.latency_ms is not None]
    if not timed:
        return None
    fastest = min(c.latency_ms for c in timed)
    tied = [c for c in timed if c.latency_ms <= fastest * (1 + latency_tolerance)]
    return min(tied, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers), _fine_tuned(c), c.latency_ms))


def _fine_tuned(candidate: Candidate) -> bool:
    """The candidate's method fine-tunes (QAT): the simpler post-training one wins a tie."""
    return candidate.method.name != PTQ.name


def most_accurate(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate of the best validation accuracy; a tie goes to fewer fp32 layers, then to PTQ."""
    scored = [c for c in candidates if c.val_accuracy is not None]
    return min(scored, key=lambda c: (-c.val_accuracy, len(c.calibration.fp32_layers), _fine_tuned(c)))


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
    """``tuning.md``: the budget, the verdict, the candidates' table and the test split of the kept model."""
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
