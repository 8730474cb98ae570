r"""Quantization-aware training inside a Lightning ``Trainer``, on torchao's PT2E flow.

Lightning 2.0 removed its ``QuantizationAwareTraining`` callback (PR #16750): it was built on the eager
``torch.ao.quantization`` API, which is deprecated. This callback takes its place on the supported stack:

1. ``setup``: the LightningModule's ``forward`` is captured with ``torch.export`` (train mode, dynamic batch)
   and prepared with ``prepare_qat_pt2e`` and torchao's ``X86InductorQuantizer``; the module's ``forward``
   is routed through the fake-quantized graph, which shares the module's parameters.
2. ``fit``: the Trainer fine-tunes as usual, with fake quantization in the loop.
3. ``on_fit_end``: ``convert_pt2e`` turns the graph into a real int8 model that replaces ``forward``.

What the old callback got wrong, and what happens here:

- **Checkpoints reload as the fp32 module** (#6457): the module's ``state_dict`` keeps its fp32 layout, so
  ``MyModule.load_from_checkpoint(path)`` works and gives the QAT-fine-tuned fp32 weights. The quantization
  state (the observed ranges) is this callback's state in the checkpoint; a Trainer with this callback
  rebuilds the same fake-quant or int8 model from it.
- **``trainer.test(ckpt_path=...)`` after ``fit``** (#12896): the checkpoint loads into the unchanged fp32
  layout, then the callback converts again from the restored weights and ranges, so the int8 model tested
  is the one of that checkpoint.
- **Export** (#7552): :meth:`export` gives a ``torch.export`` program of the int8 model (dynamic batch, fp32
  weights stripped) and :meth:`save` writes it as ``.pt2``, loadable with ``torch.export.load`` once
  ``litquant.ops`` (or torchao) is imported, which registers the int8 ops the graph calls.
- **Several or keyword inputs** (#15862, #7926): the capture follows ``example_input_array``: a tensor,
  a tuple of positional inputs, or a dict of keyword inputs; every call is bound to ``forward``'s signature,
  so ``model(a, b=b)`` and ``model(a=a, b=b)`` both work. The exported program takes positional-or-keyword
  inputs positionally and keyword-only inputs by keyword. The artifact lists every input and output (a tuple or
  a dict) and names the class logits (``logits_output``).
- **Real architectures**: a module called twice (a shared ``ReLU``) is captured with strict export
  (pytorch/ao#4478), dropout, batch norm and attention dropout are switched between training and evaluation, so
  the int8 model is deterministic. The linear layers inside ``nn.MultiheadAttention`` stay fp32: it calls them
  as ``F.linear`` on its packed ``in_proj_weight``, which torchao's x86 quantizer does not annotate.

Arguments of the old callback keep their meaning where it still exists: ``qconfig`` (``"x86"``, alias
``"fbgemm"``, or a torchao ``QuantizationConfig``), ``observer_type``, ``input_compatible``,
``quantize_on_fit_end`` and ``observer_enabled_stages``. ``modules_to_fuse`` is accepted and ignored: under
PT2E the quantizer fuses conv/linear with batch norm and ReLU by itself.

Example::

    import lightning.pytorch as L
    from litquant.callbacks import QuantizationAwareTraining
    from litquant.checkpoints import load_classifier
    from litquant.data import MNISTDataModule

    model = load_classifier("fp32.ckpt")                 # any LightningModule with example_input_array
    qat = QuantizationAwareTraining()
    trainer = L.Trainer(max_epochs=1, callbacks=[qat])
    trainer.fit(model, datamodule=MNISTDataModule(train_size=2000))
    trainer.test(model, datamodule=MNISTDataModule(), ckpt_path="best")   # the int8 model of that checkpoint
    qat.save("qat.pt2")                                  # torch.export.load("qat.pt2").module()(images)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import lightning.pytorch as L
import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_warn

if TYPE_CHECKING:  # torchao is imported on first use: importing litquant.callbacks stays fast
    from torch.export import ExportedProgram
    from torch.fx import GraphModule
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, Quantizer

    from litquant.cpu import RangeChoice
    from litquant.quantization.calibration import CalibrationConfig
    from litquant.quantization.pt2e import Example

__all__ = ["QuantizationAwareTraining"]

_STAGES = ("train", "validate", "test", "predict")


class QuantizationAwareTraining(Callback):
    """Fine-tune with fake quantization (torchao PT2E), then convert the LightningModule to int8.

    Args:
        qconfig: ``"x86"`` (alias ``"fbgemm"``): torchao's default x86 inductor QAT config, or a torchao
            ``QuantizationConfig`` applied globally.
        observer_type: the old callback's name for the activation observer inside the fake-quant modules, named
            as ``litquant quantize --quant.observer``: ``"moving_average"`` (alias ``"average"``), ``"minmax"``,
            ``"histogram"`` or ``"percentile"``; default: ``calibration.observer``, else ``"moving_average"``.
            Ignored when ``qconfig`` is a config.
        modules_to_fuse: accepted for compatibility and ignored: PT2E fuses by pattern on its own.
        input_compatible: ``True``: after conversion the module's ``forward`` runs the int8 model with the
            same float inputs and outputs. ``False``: ``forward`` is restored to fp32 after fit; the int8
            model is available from :meth:`export` / :meth:`save` only.
        quantize_on_fit_end: convert to int8 when ``fit`` ends, and in ``validate``/``test``/``predict``
            runs (after any checkpoint is restored). ``False`` keeps the fake-quant model.
        observer_enabled_stages: stages in which the observers keep updating the ranges (``train``,
            ``validate``, ``test``, ``predict``); fake quantization stays on in every stage.
        example_inputs: inputs to capture ``forward`` with; default: the module's ``example_input_array``.
        quantizer: a torchao PT2E ``Quantizer`` to use instead of the x86 one built from ``qconfig``.
        calibration: the whole :class:`~litquant.quantization.calibration.CalibrationConfig`: observer,
            percentile, weight granularity, ``fp32_layers`` (module names of the LightningModule, such as
            ``"model.conv2"``) and ``reduce_range`` (``"auto"``: 7-bit activations only on a CPU without VNNI/AMX,
            whose int8 kernels saturate with full-range ``uint8`` inputs; see
            :func:`litquant.cpu.choose_reduce_range`; the choice made is :attr:`range_choice` once prepared).
            Ignored when ``qconfig`` is a config or ``quantizer`` is given.
        logits_output: for a model with several outputs, which one is the class logits (a dict key or a tuple
            position), recorded in the saved artifact; default: the dict key ``"logits"``, or the one output.
    """

    def __init__(
        self,
        qconfig: str | QuantizationConfig = "x86",
        observer_type: Literal["average", "moving_average", "minmax", "histogram", "percentile"] | None = None,
        modules_to_fuse: Sequence[Any] | None = None,
        input_compatible: bool = True,
        quantize_on_fit_end: bool = True,
        observer_enabled_stages: Sequence[str] = ("train",),
        example_inputs: Any = None,
        quantizer: Quantizer | None = None,
        calibration: CalibrationConfig | None = None,
        logits_output: str | int | None = None,
    ) -> None:
        from litquant.quantization.calibration import OBSERVERS, QAT_OBSERVER, CalibrationConfig

        if isinstance(qconfig, str) and qconfig not in ("x86", "fbgemm"):
            raise ValueError(f"qconfig {qconfig!r} is not supported: use 'x86' or a torchao QuantizationConfig")
        if observer_type is not None and observer_type != "average" and observer_type not in OBSERVERS:
            raise ValueError(f"observer_type {observer_type!r} is not supported: use one of {', '.join(OBSERVERS)}")
        calibration = calibration or CalibrationConfig()
        observer = "moving_average" if observer_type == "average" else observer_type
        if observer and calibration.observer and observer != calibration.observer:
            raise ValueError(f"observer_type {observer_type!r} and calibration.observer {calibration.observer!r} "
                             "differ: give one of them")
        unknown = set(observer_enabled_stages) - set(_STAGES)
        if unknown:
            raise ValueError(f"observer_enabled_stages has unknown stages {sorted(unknown)}: use {', '.join(_STAGES)}")
        self.qconfig = qconfig
        self.observer_type = observer_type or "average"
        self.modules_to_fuse = modules_to_fuse
        self.input_compatible = input_compatible
        self.quantize_on_fit_end = quantize_on_fit_end
        self.observer_enabled_stages = tuple(observer_enabled_stages)
        self.example_inputs = example_inputs
        self.quantizer = quantizer
        self.logits_output = logits_output
        self._datamodule: Any = None
        #: the calibration the fake-quant modules follow, its observer filled in
        self.calibration = calibration.resolved(observer or QAT_OBSERVER)
        #: the resolved ``reduce_range`` (:class:`~litquant.cpu.RangeChoice`), set by :meth:`build_quantizer`
        self.range_choice: RangeChoice | None = None
        self._example: Example | None = None
        self._signature: inspect.Signature | None = None
        self._prepared: GraphModule | None = None
        self._quantized: ExportedProgram | None = None
        self._calibrated = False
        self._convert_pending = False
        self._observing: bool | None = None

    # -- building blocks ----------------------------------------------------------------------------
    def build_quantizer(self) -> Quantizer:
        """The PT2E quantizer this callback prepares with."""
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

        from litquant.cpu import choose_reduce_range
        from litquant.quantization.calibration import quantizer_for

        if self.quantizer is not None:
            return self.quantizer
        if not isinstance(self.qconfig, str):
            return X86InductorQuantizer().set_global(self.qconfig)
        self.range_choice = choose_reduce_range(self.calibration.reduce_range, option="reduce_range")
        return quantizer_for(self.calibration, is_qat=True, reduce_range=self.range_choice.reduce_range)

    @property
    def prepared(self) -> GraphModule | None:
        """The fake-quantized graph (``None`` before ``setup``)."""
        return self._prepared

    def prepare(self, pl_module: L.LightningModule) -> GraphModule:
        """Capture ``pl_module.forward``, insert fake quantization, and route ``forward`` through it."""
        from litquant.quantization.pt2e import canonical_inputs, capture, normalize_example, prepare_qat

        example = self.example_inputs if self.example_inputs is not None else pl_module.example_input_array
        if example is None:
            raise ValueError("QuantizationAwareTraining needs example inputs: set `example_input_array` on the "
                             "LightningModule or pass `example_inputs=`")
        signature = inspect.signature(pl_module.forward)
        args, kwargs = canonical_inputs(signature, *normalize_example(example))
        device = pl_module.device
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
        kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        self._example = (args, kwargs)
        self.calibration.check_layers(pl_module)
        graph = capture(pl_module, args, kwargs, train=True)
        prepared = prepare_qat(graph, self.build_quantizer())
        self._tie_parameters(prepared, pl_module)
        self._prepared = prepared
        self._signature = signature
        self._route(pl_module, prepared)
        return prepared

    @staticmethod
    def _tie_parameters(graph: GraphModule, pl_module: L.LightningModule) -> None:
        """Make the graph use the module's own ``Parameter`` objects: optimisers, checkpoints, device moves
        and ``load_state_dict`` on the module then act on what the graph computes with."""
        own = dict(pl_module.named_parameters())
        for name, param in list(graph.named_parameters()):
            if name in own and own[name] is not param:
                owner_name, _, attr = name.rpartition(".")
                graph.get_submodule(owner_name)._parameters[attr] = own[name]

    def _route(self, pl_module: L.LightningModule, graph: Any) -> None:
        """Send ``pl_module.forward`` to ``graph`` (``None``: back to the class's own ``forward``)."""
        from litquant.quantization.pt2e import canonical_inputs, set_graph_mode

        if graph is None:
            pl_module.__dict__.pop("forward", None)
            return
        prepared = graph if graph is self._prepared else None

        signature = self._signature

        def forward(*args: Any, **kwargs: Any) -> Any:
            if prepared is not None:
                set_graph_mode(prepared, train=pl_module.training)
            args, kwargs = canonical_inputs(signature, args, kwargs)
            return graph(*args, **kwargs)

        pl_module.forward = forward

    def _set_observers(self, stage: str) -> None:
        from torchao.quantization.pt2e import disable_observer, enable_observer

        enabled = stage in self.observer_enabled_stages
        if self._prepared is not None and enabled != self._observing:
            self._prepared.apply(enable_observer if enabled else disable_observer)
            self._observing = enabled

    def _quant_modules(self) -> dict[str, torch.nn.Module]:
        from torchao.quantization.pt2e import FakeQuantizeBase, ObserverBase

        assert self._prepared is not None
        return {name: module for name, module in self._prepared.named_modules()
                if isinstance(module, (FakeQuantizeBase, ObserverBase))}

    # -- the int8 model -----------------------------------------------------------------------------
    def convert(self, pl_module: L.LightningModule) -> ExportedProgram:
        """Convert the fake-quant graph to int8 now; with ``input_compatible`` route ``forward`` to it."""
        from litquant.quantization.pt2e import convert_to_program

        if self._prepared is None or self._example is None:
            raise RuntimeError("nothing to convert: run trainer.fit with this callback first")
        args, kwargs = self._example
        self._quantized = convert_to_program(self._prepared, args, kwargs)
        self._convert_pending = False
        if self.input_compatible:
            self._route(pl_module, _OnCPU(self._quantized.module()))
        else:
            self._route(pl_module, self._prepared)
        return self._quantized

    def export(self) -> ExportedProgram:
        """The int8 model as a ``torch.export`` program (CPU, dynamic batch, fp32 weights stripped)."""
        from litquant.quantization.pt2e import convert_to_program

        if self._quantized is None:
            if self._prepared is None or self._example is None:
                raise RuntimeError("nothing to export: run trainer.fit with this callback first")
            args, kwargs = self._example
            self._quantized = convert_to_program(self._prepared, args, kwargs)
        return self._quantized

    def save(self, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
        """Write the int8 model as a ``.pt2`` file, its description inside (plus a readable ``.json`` copy): every
        input and output of a model with several (see :mod:`litquant.artifacts.signature`), and which output is the
        class logits (``logits_output``)."""
        from litquant.artifacts.description import describe
        from litquant.artifacts.signature import program_signature
        from litquant.quantization.pt2e import save_program

        program = self.export()
        base = describe("lightning-qat", "int8", datamodule=self._datamodule,
                        signature=program_signature(program, self.logits_output))
        return save_program(program, path, {**base.to_dict(), **(meta or {})})

    # -- Lightning hooks ----------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._datamodule = trainer.datamodule
        if self._prepared is None:
            self.prepare(pl_module)
        else:
            self._route(pl_module, self._prepared)
        self._convert_pending = stage != "fit" and self.quantize_on_fit_end

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert self._prepared is not None
        self._prepared.to(pl_module.device)
        self._quantized = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._set_observers("train")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._calibrated = True

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.quantize_on_fit_end:
            self.convert(pl_module)
        elif not self.input_compatible:
            self._route(pl_module, None)

    def _on_eval_start(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._convert_pending:
            if self._calibrated:
                self.convert(pl_module)
                return
            rank_zero_warn("QuantizationAwareTraining: no fine-tuned ranges (no fit, no checkpoint with this "
                           "callback's state): evaluating the fake-quant model with untrained observers")
        self._set_observers(stage)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._set_observers("validate")
        else:
            self._on_eval_start(trainer, pl_module, "validate")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._set_observers("train")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._on_eval_start(trainer, pl_module, "test")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._on_eval_start(trainer, pl_module, "predict")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and not self.quantize_on_fit_end and not self.input_compatible:
            self._route(pl_module, None)

    # -- checkpoint state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self._prepared is None:
            return {}
        ranges = {}
        for name, module in self._quant_modules().items():
            ranges.update({f"{name}.{key}": value for key, value in module.state_dict().items()})
        state = {"ranges": ranges, "calibrated": self._calibrated or bool(ranges)}
        if self.range_choice is not None:
            state["reduce_range"] = self.range_choice.reduce_range
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self._prepared is None:
            raise RuntimeError("QuantizationAwareTraining state arrived before setup: load it through a Trainer")
        saved = state_dict.get("reduce_range")
        if saved is not None and self.range_choice is not None and saved != self.range_choice.reduce_range:
            # Ranges fine-tuned for 7-bit activations are wrong for 8 bits and the other way round (a checkpoint
            # from a CPU of another kind, resolved with "auto" here).
            raise ValueError(
                f"this checkpoint's QAT ranges were fine-tuned with reduce_range={saved}, but this callback "
                f"resolved reduce_range={self.range_choice.reduce_range} ({self.range_choice.reason}): pass "
                f"QuantizationAwareTraining(calibration=CalibrationConfig(reduce_range={saved})) to continue from it")
        modules = self._quant_modules()
        for name, module in modules.items():
            prefix = f"{name}."
            own = {k[len(prefix):]: v for k, v in state_dict["ranges"].items() if k.startswith(prefix)}
            if own:
                module.load_state_dict(own)
        self._calibrated = bool(state_dict.get("calibrated", True))


class _OnCPU:
    """Call a CPU int8 model with inputs from any device; outputs go back to the inputs' device."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
        args = tuple(v.cpu() if isinstance(v, torch.Tensor) else v for v in args)
        kwargs = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        out = self.module(*args, **kwargs)
        return torch.utils._pytree.tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, out)
