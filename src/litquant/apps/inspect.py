"""Per-layer numeric report of a PT2E int8 artifact against the fp32 checkpoint it was made from.

For every quantized conv/linear layer, on a few validation batches:

- **SQNR** (dB) of the layer's output (before its activation) in the int8 model against the fp32 model's
  same layer: ``10·log10(Σ ref² / Σ (ref − int8)²)``; it includes the error of every layer before it.
- the **activation** scale, zero point and representable range of the layer's input, and the share of input
  values outside that range (**saturated**: clamped to ``qmin``/``qmax``);
- the **weight** scales (one per channel or one per tensor) and the range of the int8 weights;
- the fp32 input's **outlier** statistics: ``max|x| / std(x)`` and how far the widest input channel's range
  is above the median channel's (one per-tensor activation scale serves every channel).

Layers below ``threshold_db`` are flagged with their likely cause. The comparison follows the quantized
graph's ``quantize → dequantize → conv/linear`` pattern and matches layers to the fp32 model by the module
path the export records (torchao's numeric debugger needs both graphs from one ``torch.export`` session and
cannot match a saved artifact to its checkpoint).

Example::

    from litquant.data import MNISTDataModule
    from litquant.apps.inspect import inspect_artifact, write_inspection

    report = inspect_artifact("quantized/ptq.pt2", "fp32.ckpt", MNISTDataModule(), batches=4)
    write_inspection(report, "inspect")          # inspect.md, inspect.json, layer_sqnr.png
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.fx import Interpreter, Node

from litquant.files import atomic_path, write_json, write_text

__all__ = ["DEFAULT_THRESHOLD_DB", "format_table", "inspect_artifact", "write_inspection"]

#: Layers whose output SQNR is below this many dB are flagged.
DEFAULT_THRESHOLD_DB = 20.0
#: Share of clamped input values above which saturation is named as a cause.
SATURATION_SHARE = 1e-3
#: Input channel range (widest / median) above which outlier channels are named as a cause.
CHANNEL_RANGE_RATIO = 20.0
#: ``max|x| / std(x)`` of the input above which outliers are named as a cause.
MAX_OVER_STD = 50.0
#: Calibrations with fewer batches are named as a possible cause.
SHORT_CALIBRATION_BATCHES = 8

_LAYERS = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)


def _is(node: Any, name: str) -> bool:
    return isinstance(node, Node) and node.op == "call_function" and getattr(node.target, "__name__", "").startswith(
        name)


@dataclass
class _Layer:
    """Running sums of one layer over the batches."""

    name: str
    node: Node
    kind: str
    signal: float = 0.0
    noise: float = 0.0
    values: int = 0
    clipped: int = 0
    input_absmax: float = 0.0
    input_sq: float = 0.0
    input_sum: float = 0.0
    channel_absmax: torch.Tensor | None = None
    activation: dict[str, Any] = field(default_factory=dict)
    weight: dict[str, Any] = field(default_factory=dict)


class _Recorder(Interpreter):
    """Runs the int8 graph node by node and keeps the values the report reads."""

    def __init__(self, module: nn.Module, wanted: set[Node]) -> None:
        super().__init__(module)
        self.wanted = wanted
        self.values: dict[Node, Any] = {}

    def run_node(self, n: Node) -> Any:
        value = super().run_node(n)
        if n in self.wanted:
            self.values[n] = value
        return value


def _module_path(node: Node) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = str(list(stack.values())[-1][0])
    for prefix in ("L['self'].", "L__self__.", "L__self___"):
        path = path.removeprefix(prefix)
    return path


def _weight_info(node: Node, attrs: dict[Node, Any]) -> dict[str, Any]:
    """Scales and int8 range of a weight ``dequantize`` node (per-tensor or per-channel)."""
    value = lambda a: attrs.get(a, a) if isinstance(a, Node) else a  # noqa: E731
    w_int = value(node.args[0])
    scales = torch.as_tensor(value(node.args[1]), dtype=torch.float32).flatten()
    per_channel = _is(node, "dequantize_per_channel")
    w = w_int.float() * (scales.view(-1, *([1] * (w_int.dim() - 1))) if per_channel else scales)
    std = float(w.std())
    return {"granularity": "per_channel" if per_channel else "per_tensor",
            "scale_min": float(scales.min()), "scale_max": float(scales.max()),
            "int_min": int(w_int.min()), "int_max": int(w_int.max()),
            "range": [float(w.min()), float(w.max())],
            "max_over_std": float(w.abs().max() / std) if std > 0 else 0.0}


def inspect_artifact(artifact: str | os.PathLike, checkpoint: str | os.PathLike, datamodule: Any, *,
                     batches: int = 4, batch_size: int = 256,
                     threshold_db: float = DEFAULT_THRESHOLD_DB) -> dict[str, Any]:
    """Compare every quantized conv/linear layer of the ``.pt2`` ``artifact`` with the fp32 model of
    ``checkpoint`` on ``batches`` validation batches. Returns the report (see :func:`write_inspection`)."""
    from litquant.artifacts.errors import ArtifactError
    from litquant.artifacts.loading import load_artifact
    from litquant.checkpoints import load_classifier

    if batches < 1:
        raise ValueError(f"batches must be at least 1, got {batches}")
    if Path(artifact).suffix != ".pt2":
        raise ArtifactError(f"{artifact}: the per-layer report reads PT2E .pt2 artifacts (ptq, qat, lightning-qat)")
    loaded = load_artifact(artifact, compile=False, progress=False)
    graph_module = loaded.module
    fp32 = load_classifier(checkpoint).model.eval()
    fp32_modules = {name: m for name, m in fp32.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}

    layer_nodes = [n for n in graph_module.graph.nodes if n.op == "call_function" and n.target in _LAYERS]
    layers: list[_Layer] = []
    unquantized: list[str] = []
    for index, node in enumerate(layer_nodes):
        name = _module_path(node)
        if name not in fp32_modules:  # no recorded module path: match by order
            name = list(fp32_modules)[index] if index < len(fp32_modules) else node.name
        quantized = _is(node.args[0], "dequantize") and _is(node.args[0].args[0], "quantize") \
            and _is(node.args[1], "dequantize")
        if not quantized or name not in fp32_modules:
            unquantized.append(name)
            continue
        layers.append(_Layer(name, node, "conv" if node.target == _LAYERS[0] else "linear"))
    if not layers:
        raise ArtifactError(f"{artifact}: no quantized conv/linear layer found; is it an int8 artifact?")

    attrs = {n: operator.attrgetter(str(n.target))(graph_module) for n in graph_module.graph.nodes
             if n.op == "get_attr"}
    for layer in layers:
        quant = layer.node.args[0].args[0]
        scale, zero_point, qmin, qmax = (float(quant.args[1]), int(quant.args[2]), int(quant.args[3]),
                                         int(quant.args[4]))
        layer.activation = {"scale": scale, "zero_point": zero_point, "qmin": qmin, "qmax": qmax,
                            "range": [(qmin - zero_point) * scale, (qmax - zero_point) * scale]}
        layer.weight = _weight_info(layer.node.args[1], attrs)

    fp32_inputs: dict[str, torch.Tensor] = {}
    fp32_outputs: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            fp32_inputs[name], fp32_outputs[name] = inputs[0], output
        return record

    handles = [fp32_modules[layer.name].register_forward_hook(hook(layer.name)) for layer in layers]
    wanted = {layer.node for layer in layers} | {layer.node.args[0].args[0].args[0] for layer in layers}
    samples = 0
    try:
        with torch.inference_mode():
            for images, _ in datamodule.normalized_batches("val", batch_size, batches):
                samples += len(images)
                fp32(images)
                recorder = _Recorder(graph_module, wanted)
                recorder.run(images)
                for layer in layers:
                    ref, actual = fp32_outputs[layer.name].float(), recorder.values[layer.node].float()
                    layer.signal += float(ref.pow(2).sum())
                    layer.noise += float((ref - actual).pow(2).sum())
                    x_int8 = recorder.values[layer.node.args[0].args[0].args[0]].float()
                    low, high = layer.activation["range"]
                    half = layer.activation["scale"] / 2
                    layer.clipped += int(((x_int8 < low - half) | (x_int8 > high + half)).sum())
                    layer.values += x_int8.numel()
                    x = fp32_inputs[layer.name].float()
                    layer.input_absmax = max(layer.input_absmax, float(x.abs().max()))
                    layer.input_sum += float(x.sum())
                    layer.input_sq += float(x.pow(2).sum())
                    channels = x.transpose(0, 1).reshape(x.shape[1], -1).abs().amax(dim=1)
                    layer.channel_absmax = channels if layer.channel_absmax is None else \
                        torch.maximum(layer.channel_absmax, channels)
    finally:
        for handle in handles:
            handle.remove()

    calibration_batches = loaded.meta.get("calibration_batches")
    rows = []
    for layer in layers:
        sqnr = 10 * math.log10(layer.signal / layer.noise) if layer.noise > 0 else math.inf
        mean = layer.input_sum / layer.values
        std = math.sqrt(max(layer.input_sq / layer.values - mean * mean, 0.0))
        channels = layer.channel_absmax
        median = float(channels.median()) if channels is not None else 0.0
        row = {
            "layer": layer.name, "kind": layer.kind, "sqnr_db": sqnr,
            "activation": layer.activation, "weight": layer.weight,
            "saturated": layer.clipped / layer.values,
            "input": {"absmax": layer.input_absmax, "std": std,
                      "max_over_std": layer.input_absmax / std if std > 0 else 0.0,
                      "channel_range_ratio": float(channels.max()) / median if median > 0 else 0.0},
        }
        rows.append(row)
    flagged_before = False
    for row in rows:
        row["flagged"] = row["sqnr_db"] < threshold_db
        row["causes"] = _causes(row, calibration_batches, flagged_before) if row["flagged"] else []
        flagged_before = flagged_before or row["flagged"]
    return {"artifact": str(artifact), "checkpoint": str(checkpoint), "method": loaded.meta.get("method"),
            "calibration": loaded.meta.get("calibration"), "calibration_batches": calibration_batches,
            "int8_range": loaded.meta.get("int8_range"), "split": "val", "samples": samples,
            "threshold_db": threshold_db, "layers": rows,
            "not_quantized": unquantized}


def _causes(row: dict[str, Any], calibration_batches: int | None, after_flagged: bool) -> list[str]:
    """The likely causes of a flagged layer's low SQNR, most specific first."""
    causes = []
    inputs = row["input"]
    if inputs["channel_range_ratio"] > CHANNEL_RANGE_RATIO or inputs["max_over_std"] > MAX_OVER_STD:
        causes.append(f"outliers: the widest input channel spans {inputs['channel_range_ratio']:.0f}x the median "
                      f"channel's range (max/std {inputs['max_over_std']:.0f}); one per-tensor activation scale "
                      "leaves the other channels a few int8 steps")
    if row["saturated"] > SATURATION_SHARE:
        causes.append(f"saturation: {row['saturated']:.2%} of the input values lie outside the calibrated range "
                      "(try --quant.observer minmax or a longer calibration)")
    if row["weight"]["max_over_std"] > MAX_OVER_STD:
        causes.append(f"weight outliers (max/std {row['weight']['max_over_std']:.0f}, "
                      f"{row['weight']['granularity']} scales)")
    if calibration_batches is not None and calibration_batches < SHORT_CALIBRATION_BATCHES:
        causes.append(f"short calibration: {calibration_batches} batches (try --quant.calibration_batches 32)")
    if not causes and after_flagged:
        causes.append("error carried from an earlier flagged layer")
    return causes or ["no single cause found: try fp32 for this layer"]


def format_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per layer."""
    lines = ["| layer | SQNR (dB) | act. scale | act. range | saturated | input max/std | channel range "
             "| weight scales | flag |",
             "|---|---:|---:|---|---:|---:|---:|---|---|"]
    for row in report["layers"]:
        act, weight, inputs = row["activation"], row["weight"], row["input"]
        flag = "LOW: " + "; ".join(row["causes"]) if row["flagged"] else ""
        lines.append(
            f"| {row['layer']} | {row['sqnr_db']:.1f} | {act['scale']:.4g} | [{act['range'][0]:.3g}, "
            f"{act['range'][1]:.3g}] | {row['saturated']:.2%} | {inputs['max_over_std']:.1f} | "
            f"{inputs['channel_range_ratio']:.1f}x | {weight['granularity']} {weight['scale_min']:.3g}.."
            f"{weight['scale_max']:.3g} | {flag} |")
    if report.get("not_quantized"):
        lines += ["", f"Not quantized (fp32): {', '.join(report['not_quantized'])}"]
    return "\n".join(lines)


def _plot(report: dict[str, Any], target: Path) -> Path:
    from matplotlib.figure import Figure

    rows = report["layers"]
    figure = Figure(figsize=(6.4, 3.6), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    values = [min(row["sqnr_db"], 99.0) for row in rows]
    colours = ["tab:red" if row["flagged"] else "tab:blue" for row in rows]
    axes.bar([row["layer"] for row in rows], values, color=colours)
    axes.axhline(report["threshold_db"], color="tab:red", linestyle="--", linewidth=1,
                 label=f"threshold {report['threshold_db']:g} dB")
    axes.set_ylabel("output SQNR vs fp32 (dB)")
    axes.set_title(f"Per-layer SQNR: {Path(report['artifact']).name}")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target


def _range_text(entry: Any) -> str:
    """``, 7-bit activations (why)`` from a description's ``int8_range`` entry, one printable line (the why cut
    short); empty for older artifacts and entries whose ``reduce_range`` is not a boolean."""
    from litquant.images import printable

    if not isinstance(entry, dict) or not isinstance(entry.get("reduce_range"), bool):
        return ""  # an older artifact, or a hand-edited entry that says nothing for sure
    reason = f" ({printable(entry['reason'], limit=200)})" if isinstance(entry.get("reason"), str) else ""
    return f", {'7-bit' if entry['reduce_range'] else 'full 8-bit'} activations{reason}"


def write_inspection(report: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``inspect.json``, ``inspect.md`` and ``layer_sqnr.png`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flagged = [row["layer"] for row in report["layers"] if row["flagged"]]
    summary = (f"{len(flagged)} of {len(report['layers'])} layers below {report['threshold_db']:g} dB"
               + (f": {', '.join(flagged)}" if flagged else ""))
    markdown = "\n".join([
        f"# Per-layer report: {Path(report['artifact']).name}", "",
        f"Against `{Path(report['checkpoint']).name}` on {report['samples']} {report['split']} images; method "
        f"{report['method']}, calibration {report['calibration']}{_range_text(report.get('int8_range'))}. "
        f"{summary}.", "",
        format_table(report), "", "![per-layer SQNR](layer_sqnr.png)", ""])
    json_report = {**report, "layers": [{**row, "sqnr_db": row["sqnr_db"] if math.isfinite(row["sqnr_db"])
                                         else None} for row in report["layers"]]}
    return {"json": write_json(out_dir / "inspect.json", json_report),
            "markdown": write_text(out_dir / "inspect.md", markdown),
            "plot": _plot(report, out_dir / "layer_sqnr.png")}
