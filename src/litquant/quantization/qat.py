"""Quantization-aware training with PT2E in a plain PyTorch loop (no Trainer).

The fp32 model is captured in train mode, fake quantization is inserted with ``prepare_qat_pt2e``, the
model is fine-tuned with AdamW and cross-entropy for a few epochs or steps, then converted to int8.
:func:`~litquant.quantization.pt2e.set_graph_mode` switches dropout in the captured graph, which
``.train()``/``.eval()`` cannot do, and keeps the module's own dropout probabilities.

Example::

    from litquant.data import MNISTDataModule
    from litquant.quantization.config import QuantizeConfig
    from litquant.quantization.model_io import checked_net
    from litquant.quantization.qat import quantize_qat

    data = MNISTDataModule(train_size=2000)
    program = quantize_qat(checked_net("fp32.ckpt", data), data, QuantizeConfig(qat_epochs=1, qat_max_steps=50))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.export import ExportedProgram
from torch.fx import GraphModule
from tqdm import tqdm

from litquant.data.batches import batch_count, labelled_batches
from litquant.quantization.calibration import QAT_OBSERVER, CalibrationConfig, quantizer_for
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.methods import PT2EMethod, QuantizeJob, register_method
from litquant.quantization.model_io import CheckedNet
from litquant.quantization.pt2e import QUANTIZER_NAME, capture, convert_to_program, prepare_qat

__all__ = ["QAT", "prepare_net_for_qat", "quantize_qat"]


def prepare_net_for_qat(net: nn.Module, example: tuple, calibration: CalibrationConfig | None = None, *,
                        example_kwargs: dict | None = None) -> GraphModule:
    """``net`` captured in training mode (on the positional inputs ``example`` and the keyword inputs
    ``example_kwargs``) with fake quantization inserted, its own dropout probabilities (and batch-norm settings)
    kept; switch it with :func:`~litquant.quantization.pt2e.set_graph_mode`."""
    if calibration is not None:
        calibration.check_layers(net)
    return prepare_qat(capture(net, example, example_kwargs, train=True), quantizer_for(calibration, is_qat=True))


def quantize_qat(checked: CheckedNet, datamodule: Any, config: QuantizeConfig | None = None, *,
                 weight_decay: float = 1e-4, progress: bool = True) -> ExportedProgram:
    """Fine-tune the checked network with fake quantization (cross-entropy on its class logits) and return the
    int8 program.

    Args:
        checked: the fp32 network (fine-tuned in place), its example inputs and how a batch feeds it
            (:func:`~litquant.quantization.model_io.checked_net`).
        datamodule: the data whose training split fine-tunes (:func:`~litquant.data.batches.labelled_batches`).
        config: the options (default :class:`QuantizeConfig`): ``qat_epochs`` epochs of at most ``qat_max_steps``
            steps in all, AdamW at ``qat_lr``; its calibration chooses the observers inside the fake-quant
            modules, the weight granularity and the layers left in fp32.
        weight_decay: AdamW's weight decay.
        progress: a progress bar per epoch.

    Raises:
        ValueError: ``config.fp32_layers`` names no conv/linear layer of ``net``.
    """
    config = config or QuantizeConfig()
    epochs, max_steps = config.qat_epochs, config.qat_max_steps
    net = checked.net
    device = next(net.parameters()).device
    example = checked.example_on(device)
    prepared = prepare_net_for_qat(net, example[0], config.calibration, example_kwargs=example[1])
    optimizer = torch.optim.AdamW(prepared.parameters(), lr=config.qat_lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()
    step = 0
    per_epoch = batch_count(datamodule, "train")
    for epoch in range(epochs):
        batches = labelled_batches(datamodule, "train", shuffle=True, seed=getattr(datamodule, "seed", 0) + epoch,
                                   device=device)
        total = per_epoch if max_steps is None else min(per_epoch or max_steps, max_steps - step)
        for inputs, labels in tqdm(batches, desc=f"qat: epoch {epoch + 1}/{epochs}", total=total,
                                   disable=not progress, leave=False):
            inputs_args, inputs_kwargs = checked.inputs(inputs)
            loss = criterion(checked.logits(prepared(*inputs_args, **inputs_kwargs)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if max_steps is not None and step >= max_steps:
            break
    return convert_to_program(prepared, *example)


class QAT(PT2EMethod):
    """``qat``: :func:`quantize_qat` for ``config.qat_epochs`` (at most ``config.qat_max_steps`` steps)."""

    name = "qat"
    label = "PyTorch QAT (PT2E, plain PyTorch loop)"
    default_observer = QAT_OBSERVER

    def fine_tune(self, job: QuantizeJob) -> ExportedProgram:
        """The checkpoint's model fine-tuned with fake quantization, converted to int8."""
        return quantize_qat(job.checked, job.datamodule, job.config, progress=job.progress)

    def program(self, job: QuantizeJob) -> tuple[ExportedProgram, dict[str, Any]]:
        if job.config.qat_max_steps == 0:
            raise ValueError(f"{self.name}: --quant.qat_max_steps 0 leaves nothing to fine-tune; give 1 or more "
                             "(0 only tells --method auto to skip QAT)")
        return self.fine_tune(job), {"fine_tuning": job.config.fine_tuning(),
                                     "quantizer": QUANTIZER_NAME}


register_method(QAT())
