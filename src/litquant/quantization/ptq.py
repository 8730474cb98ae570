"""Post-training static int8 quantization with PT2E and torchao's ``X86InductorQuantizer``.

The fp32 model is captured with ``torch.export`` (dynamic batch), observers are inserted with
``prepare_pt2e``, a few training batches calibrate the activation ranges, and ``convert_pt2e`` produces the
int8 graph, saved as ``.pt2``.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.config import QuantizeConfig
    from litquant.quantization.model_io import checked_net
    from litquant.quantization.ptq import quantize_ptq

    data = MNISTDataModule(train_size=2000)
    program = quantize_ptq(checked_net("fp32.ckpt", data), data, QuantizeConfig(calibration_batches=16))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.fx import GraphModule
from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
from tqdm import tqdm

from litquant.data.batches import labelled_batches
from litquant.quantization.calibration import PTQ_OBSERVER, CalibrationConfig, quantizer_for
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.methods import PT2EMethod, QuantizeJob, register_method
from litquant.quantization.model_io import CheckedNet
from litquant.quantization.pt2e import QUANTIZER_NAME, Example, capture, convert_to_program

__all__ = ["PTQ", "calibrate", "quantize_ptq"]


def quantize_ptq(checked: CheckedNet, datamodule: Any, config: QuantizeConfig | None = None, *,
                 progress: bool = True) -> ExportedProgram:
    """Calibrate the checked network on ``config.calibration_batches`` shuffled training batches and return the
    int8 program.

    Args:
        checked: the fp32 network (left unchanged), its example inputs and how a batch feeds it
            (:func:`~litquant.quantization.model_io.checked_net`).
        datamodule: the data whose training split calibrates (:func:`~litquant.data.batches.labelled_batches`).
        config: the options (default :class:`QuantizeConfig`); its calibration chooses the observers, the weight
            granularity and the layers left in fp32.
        progress: a progress bar on a terminal.

    Raises:
        ValueError: ``config.fp32_layers`` names no conv/linear layer of ``net``.
    """
    config = config or QuantizeConfig()
    calibration = config.calibration
    net = checked.net
    calibration.check_layers(net)
    device = next(net.parameters()).device
    batches = list(labelled_batches(datamodule, "train", limit=config.calibration_batches, shuffle=True,
                                    device=device))
    example = checked.example_on(device)
    prepared = calibrate(capture(net, *example, train=False), batches, calibration, progress=progress,
                         copy_graph=False, inputs=checked.inputs)
    return convert_to_program(prepared, *example)


def calibrate(captured: GraphModule, batches: Iterable[tuple[torch.Tensor, Any]],
              calibration: CalibrationConfig | None = None, *, progress: bool = False,
              copy_graph: bool = True, inputs: Callable[[torch.Tensor], Example] | None = None) -> GraphModule:
    """Observers of ``calibration`` inserted into ``captured`` (an eval-mode capture; a copy of it unless
    ``copy_graph`` is false) and fed ``batches``: the graph :func:`~litquant.quantization.pt2e.convert_to_program`
    turns into int8. Calibrating copies of one capture tries several configurations for one export.

    Args:
        captured: an eval-mode capture (:func:`~litquant.quantization.pt2e.capture`).
        batches: ``(inputs, target)`` batches whose inputs are fed to the observers.
        calibration: the observers and weight granularity (default :class:`CalibrationConfig`).
        progress: a progress bar on a terminal.
        copy_graph: calibrate a copy of ``captured``, which stays as it is.
        inputs: turns a batch's inputs into the model's ``(args, kwargs)`` (default: they are the one input).
    """
    graph = copy.deepcopy(captured) if copy_graph else captured  # progress bar on a terminal only (tqdm: None)
    prepared = prepare_pt2e(graph, quantizer_for(calibration, is_qat=False))
    with torch.no_grad():
        for images, _ in tqdm(batches, desc="ptq: calibrating", disable=None if progress else True, leave=False):
            args, kwargs = ((images,), {}) if inputs is None else inputs(images)
            prepared(*args, **kwargs)
    return prepared


class PTQ(PT2EMethod):
    """``ptq``: :func:`quantize_ptq` on ``config.calibration_batches`` batches."""

    name = "ptq"
    label = "PyTorch PTQ (PT2E, X86InductorQuantizer)"
    default_observer = PTQ_OBSERVER

    def program(self, job: QuantizeJob) -> tuple[ExportedProgram, dict[str, Any]]:
        program = quantize_ptq(job.checked, job.datamodule, job.config, progress=job.progress)
        return program, {"calibration_batches": job.config.calibration_batches,
                         "quantizer": QUANTIZER_NAME}


register_method(PTQ())
