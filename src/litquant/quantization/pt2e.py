"""The PT2E steps every PyTorch int8 method shares: capture, quantizer, convert, strip, save.

PT2E quantization works on a graph captured by ``torch.export``: the quantizer annotates it, observers
(post-training) or fake-quant modules (quantization-aware training) are inserted, and ``convert_pt2e``
folds the measured ranges into ``quantize``/``dequantize`` ops and ``int8`` weights. The converted graph
is exported again, with a dynamic batch dimension and without the fp32 weights it no longer uses, and
saved as one ``.pt2`` file with its description inside (:mod:`litquant.artifacts`), and a readable JSON copy
beside it.

Example::

    import torch
    from litquant.model import Net
    from litquant.quantization.calibration import quantizer_for
    from litquant.quantization.pt2e import capture, convert_to_program, save_program
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    example = (torch.randn(2, 1, 28, 28),)
    prepared = prepare_pt2e(capture(Net().eval(), example), quantizer_for(is_qat=False))
    prepared(*example)                                  # calibrate
    save_program(convert_to_program(prepared, example), "int8.pt2", {"method": "ptq"})
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.export import Dim, ExportedProgram
from torch.fx import GraphModule
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

from litquant import ignore_library_internal_warnings
from litquant.artifacts.description import ArtifactDescription, describe
from litquant.artifacts.saving import save_pt2
from litquant.quantization.conv_bn_folding import faster_conv_bn_folding

__all__ = [
    "QUANTIZER_NAME",
    "Example",
    "artifact_meta",
    "batch_dynamic_shapes",
    "canonical_inputs",
    "capture",
    "convert_to_program",
    "export_graph",
    "export_program",
    "normalize_example",
    "prepare_qat",
    "save_program",
    "set_graph_mode",
    "strip_unused_attributes",
]

#: Example inputs as ``(args, kwargs)``.
Example = tuple[tuple[Any, ...], dict[str, Any]]


def normalize_example(example: Any) -> Example:
    """Lightning's ``example_input_array`` convention to ``(args, kwargs)``: a tensor is the one positional
    input, a tuple or list the positional inputs, a dict the keyword inputs. Batches of one are repeated
    to two samples, since ``torch.export`` specialises a dimension whose example size is 1."""
    if isinstance(example, torch.Tensor):
        args, kwargs = (example,), {}
    elif isinstance(example, (tuple, list)):
        args, kwargs = tuple(example), {}
    elif isinstance(example, Mapping):
        args, kwargs = (), dict(example)
    else:
        raise TypeError(f"example inputs must be a tensor, a tuple or a dict of tensors, got {type(example).__name__}")

    def at_least_two(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == 1:
            return value.expand(2, *value.shape[1:]).clone()
        return value

    return tuple(at_least_two(a) for a in args), {k: at_least_two(v) for k, v in kwargs.items()}


def canonical_inputs(signature: inspect.Signature, args: tuple, kwargs: dict) -> Example:
    """Bind a call to ``signature`` (defaults applied) and lay it out one fixed way: positional-or-keyword
    inputs positionally, keyword-only inputs by keyword. An exported graph accepts only the layout it was
    captured with; this makes ``f(a, b=b)`` and ``f(a=a, b=b)`` the same call."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional.append(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[name] = value
        else:
            keywords.update(value)
    return tuple(positional), keywords


def batch_dynamic_shapes(module: torch.nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """``dynamic_shapes`` for ``torch.export`` marking dimension 0 of every tensor input as one shared
    ``batch`` dimension, keyed by the names of ``module.forward``'s parameters."""
    batch = Dim("batch", min=1)
    bound = inspect.signature(module.forward).bind(*args, **kwargs)
    shapes: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = inspect.signature(module.forward).parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            shapes[name] = tuple({0: batch} if isinstance(v, torch.Tensor) else None for v in value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            shapes[name] = {k: {0: batch} if isinstance(v, torch.Tensor) else None for k, v in value.items()}
        else:
            shapes[name] = {0: batch} if isinstance(value, torch.Tensor) and value.dim() > 0 else None
    return shapes


def export_program(module: torch.nn.Module, args: tuple, kwargs: dict | None = None) -> ExportedProgram:
    """``torch.export.export`` with a dynamic batch dimension on every tensor input."""
    kwargs = kwargs or {}
    return torch.export.export(module, args, kwargs, dynamic_shapes=batch_dynamic_shapes(module, args, kwargs))


#: The ops whose behaviour depends on the mode, and the position of their ``train``/``training`` argument.
_MODE_ARGUMENT = {
    torch.ops.aten.dropout.default: 2,
    torch.ops.aten.dropout_.default: 2,
    torch.ops.aten.feature_dropout.default: 2,
    torch.ops.aten.feature_dropout_.default: 2,
    torch.ops.aten.alpha_dropout.default: 2,
    torch.ops.aten.alpha_dropout_.default: 2,
    torch.ops.aten.feature_alpha_dropout.default: 2,
    torch.ops.aten.feature_alpha_dropout_.default: 2,
    torch.ops.aten.batch_norm.default: 5,
    torch.ops.aten.rrelu.default: 3,
}
#: Ops whose dropout probability is an argument, and its position: captured in training mode, the module's
#: probability is frozen into the node; evaluation sets it to 0 and training puts the captured one back.
_DROPOUT_PROBABILITY = {
    torch.ops.aten.scaled_dot_product_attention.default: (4, "dropout_p"),
}
#: Where a node keeps the dropout probability it was captured with.
_CAPTURED_DROPOUT = "litquant_captured_dropout_p"
#: torchao's marker of an exported graph's mode: its own switches see the graph's real mode and leave it alone.
_EXPORTED_TRAINING_ATTR = "_exported_training"


def _set_dropout_probability(node: torch.fx.Node, position: int, name: str, train: bool) -> bool:
    """Set ``node``'s dropout probability for the mode (0 in evaluation); ``True`` if it changed."""
    in_args = len(node.args) > position
    current = node.args[position] if in_args else node.kwargs.get(name, 0.0)
    if not isinstance(current, (int, float)):
        return False
    captured = node.meta.setdefault(_CAPTURED_DROPOUT, float(current))
    wanted = captured if train else 0.0
    if current == wanted:
        return False
    if in_args:
        node.args = (*node.args[:position], wanted, *node.args[position + 1:])
    else:
        node.kwargs = {**node.kwargs, name: wanted}
    return True


def set_graph_mode(graph: GraphModule, *, train: bool) -> GraphModule:
    """Switch every op of an exported graph that behaves differently in training to training or evaluation, in
    place: dropout, batch norm, and the attention dropout of ``scaled_dot_product_attention`` (which
    ``nn.MultiheadAttention`` captured in training mode calls with its ``dropout``).

    ``.train()``/``.eval()`` do not reach into an exported graph. torchao's ``move_exported_model_to_train``
    and ``_eval`` rewrite dropout and batch norm from fixed patterns and so reset every dropout to ``p=0.5`` and
    every batch norm to ``momentum=0.1, eps=1e-5`` (pytorch/ao#2980), and leave attention dropout on. Here only
    the nodes' ``train`` flag or dropout probability changes; probabilities, momenta and epsilons stay the
    module's own. A graph already in that mode is left as it is (cheap enough to call before every forward).
    """
    if getattr(graph, _EXPORTED_TRAINING_ATTR, None) is train:
        return graph
    changed = False
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in _DROPOUT_PROBABILITY:
            changed |= _set_dropout_probability(node, *_DROPOUT_PROBABILITY[node.target], train)
            continue
        position = _MODE_ARGUMENT.get(node.target)
        if position is None or len(node.args) <= position or not isinstance(node.args[position], bool):
            continue
        if node.args[position] != train:
            node.args = (*node.args[:position], train, *node.args[position + 1:])
            changed = True
    if changed:
        graph.recompile()
    setattr(graph, _EXPORTED_TRAINING_ATTR, train)
    return graph


def _shared_module_partitions(graph: GraphModule, module: torch.nn.Module) -> list[str]:
    """The modules of ``module`` called more than once whose calls a non-strict capture merges into one source
    partition with several outputs (a torchvision ``BasicBlock``'s one ``self.relu``), which torchao's quantizers
    refuse. Partitions as torchao's quantizers find them (torch's ``get_source_partitions``, keyed by the
    innermost module of a node's ``nn_module_stack``)."""
    from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

    classes = {f"{type(m).__module__}.{type(m).__qualname__}": type(m) for m in module.modules()}
    shared = get_source_partitions(graph.graph, list(set(classes.values())))
    return sorted({next(reversed(partition.output_nodes[0].meta["nn_module_stack"].values()))[0]
                   for partitions in shared.values() for partition in partitions if len(partition.output_nodes) > 1})


def export_graph(module: torch.nn.Module, args: tuple, kwargs: dict | None = None) -> GraphModule:
    """``module`` exported (dynamic batch) as a ``GraphModule`` PT2E can annotate.

    Non-strict export names each call of a module by the module, so a module called twice (a shared ReLU) is
    one source partition with two outputs, and torchao's x86 quantizer fails with "Input partition has more than
    one output node" (pytorch/ao#4478; fixed for linear layers by pytorch/ao#4480, still open for conv patterns).
    Strict export (TorchDynamo) names every call apart: it is the fallback for such graphs only, as it traces
    fewer Python constructs than non-strict export.
    """
    kwargs = kwargs or {}
    graph = export_program(module, args, kwargs).module()
    if _shared_module_partitions(graph, module):
        strict = torch.export.export(module, args, kwargs, dynamic_shapes=batch_dynamic_shapes(module, args, kwargs),
                                     strict=True)
        graph = strict.module()
    return graph


def capture(module: torch.nn.Module, args: tuple, kwargs: dict | None = None, *, train: bool = False) -> GraphModule:
    """Capture ``module`` for PT2E quantization (:func:`export_graph`): exported in train mode (``train=True``,
    for QAT: dropout and batch norm behave as in training) or eval mode, returned as a ``GraphModule`` in that
    mode, with the module's own dropout probabilities and batch-norm settings (switch it later with
    :func:`set_graph_mode`)."""
    was_training = module.training
    module.train(train)
    try:
        graph = export_graph(module, args, kwargs)
    finally:
        module.train(was_training)
    return set_graph_mode(graph, train=train)


def _batch_norm_settings(graph: GraphModule) -> dict[str, tuple[Any, Any]]:
    """``{running_var attribute: (momentum, eps)}`` of every batch-norm node of ``graph``."""
    settings = {}
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.batch_norm.default:
            running_var = node.args[4]
            if isinstance(running_var, torch.fx.Node) and running_var.op == "get_attr":
                settings[running_var.target] = (node.args[6], node.args[7])
    return settings


def _restore_batch_norm_settings(graph: GraphModule, settings: dict[str, tuple[Any, Any]]) -> None:
    """Put each batch norm's own momentum and eps back into ``graph``: into its ``batch_norm`` node and into the
    ``running_var + eps`` that torchao's QAT conv/batch-norm fusion writes with its fixed ``1e-5``."""
    for node in graph.graph.nodes:
        if node.op != "get_attr" or node.target not in settings:
            continue
        momentum, eps = settings[node.target]
        for user in node.users:
            if user.target == torch.ops.aten.batch_norm.default and user.args[4] is node:
                user.args = (*user.args[:6], momentum, eps, *user.args[8:])
            elif user.target == torch.ops.aten.add.Tensor and user.args[0] is node and isinstance(user.args[1], float):
                user.args = (node, eps)
    graph.recompile()


def prepare_qat(graph: GraphModule, quantizer: Any) -> GraphModule:
    """``prepare_qat_pt2e`` that keeps the captured model's batch-norm momentum and eps (torchao's conv/batch-norm
    fusion resets them to its defaults), returned in training mode (see :func:`set_graph_mode`)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    settings = _batch_norm_settings(graph)
    prepared = prepare_qat_pt2e(graph, quantizer)
    _restore_batch_norm_settings(prepared, settings)
    return set_graph_mode(prepared, train=True)


#: The quantizer of :func:`~litquant.quantization.calibration.quantizer_for`, as the description of a PT2E int8
#: artifact names it.
QUANTIZER_NAME = "torchao X86InductorQuantizer"


def strip_unused_attributes(graph: GraphModule) -> GraphModule:
    """Delete parameters and buffers no node reads (after ``convert_pt2e`` the fp32 weights of every
    quantized layer), so that the exported program does not carry them. Works in place."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    names = [name for name, _ in graph.named_parameters()] + [name for name, _ in graph.named_buffers()]
    for name in names:
        if name in used:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = graph.get_submodule(owner_name)
        owner._parameters.pop(attr, None)
        owner._buffers.pop(attr, None)
    return graph


def convert_to_program(prepared: GraphModule, args: tuple, kwargs: dict | None = None) -> ExportedProgram:
    """Convert a calibrated or fine-tuned PT2E graph to int8 and export it (dynamic batch, CPU, fp32 weights
    of quantized layers stripped). ``prepared`` is left untouched, so it can be converted again later."""
    with warnings.catch_warnings():  # torch's own pytree pickling warns about its internals
        ignore_library_internal_warnings()
        graph = copy.deepcopy(prepared).cpu()
    set_graph_mode(graph, train=False)
    with faster_conv_bn_folding():
        converted = strip_unused_attributes(convert_pt2e(graph))
    cpu = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
    cpu_kwargs = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in (kwargs or {}).items()}
    return export_program(converted, tuple(cpu), cpu_kwargs)


def artifact_meta(method: str, precision: str, *, datamodule: Any = None, checkpoint: str | os.PathLike | None = None,
                  input_names: Iterable[str] = ("x",), **extra: Any) -> dict[str, Any]:
    """The description of an artifact as a dict (see :func:`litquant.artifacts.description.describe`)."""
    return describe(method, precision, datamodule=datamodule, checkpoint=checkpoint, input_names=input_names,
                    **extra).to_dict()


def save_program(program: ExportedProgram, path: str | os.PathLike,
                 description: ArtifactDescription | Mapping[str, Any]) -> Path:
    """Save an exported program as ``.pt2`` with its description inside, then the readable JSON copy
    (:func:`litquant.artifacts.saving.save_pt2`)."""
    return save_pt2(program, path, description)
