"""Quantization-aware training with PT2E in a plain PyTorch loop (no Trainer).

The fp32 model is captured in train mode, fake quantization is inserted with ``prepare_qat_pt2e``, the
model is fine-tuned with AdamW and cross-entropy for a few epochs or steps, then converted to int8.
:func:`~litquant.quantization.pt2e.set_graph_mode` switches dropout in the captured graph, which
``.train()``/``.eval()`` cannot do, and keeps the module's own dropout probabilities.

Example::

    from litquant.checkpoints import load_classifier
    from litquant.data import MNISTDataModule
    from litquant.quantization.config import QuantizeConfig
    from litquant.quantization.qat import quantize_qat

    net = load_classifier("fp32.ckpt").model
    program = quantize_qat(net, MNISTDataModule(train_size=2000), QuantizeConfig(qat_epochs=1, qat_max_steps=50))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.export import ExportedProgram
from torch.fx import GraphModule
from tqdm import tqdm

from litquant.quantization.calibration import QAT_OBSERVER, CalibrationConfig, quantizer_for
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.methods import PT2EMethod, QuantizeJob, register_method
from litquant.quantization.pt2e import QUANTIZER_NAME, capture, convert_to_program, prepare_qat

__all__ = ["QAT", "prepare_net_for_qat", "quantize_qat"]


def prepare_net_for_qat(net: nn.Module, example: tuple, calibration: CalibrationConfig | None = None) -> GraphModule:
    """``net`` captured in training mode with fake quantization inserted, its own dropout probabilities (and
    batch-norm settings) kept; switch it with :func:`~litquant.quantization.pt2e.set_graph_mode`."""
    if calibration is not None:
        calibration.check_layers(net)
    return prepare_qat(capture(net, example, train=True), quantizer_for(calibration, is_qat=True))


def quantize_qat(net: nn.Module, datamodule: Any, config: QuantizeConfig | None = None, *,
                 weight_decay: float = 1e-4, progress: bool = True) -> ExportedProgram:
    """Fine-tune ``net`` with fake quantization and return the int8 program.

    Args:
        net: the fp32 model, fine-tuned in place.
        datamodule: the data whose training split fine-tunes.
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
    device = next(net.parameters()).device
    images, _ = next(datamodule.normalized_batches("train", limit=1, device=device))
    example = (images[:2].clone(),)  # a copy: the saved example holds no whole batch
    prepared = prepare_net_for_qat(net, example, config.calibration)
    optimizer = torch.optim.AdamW(prepared.parameters(), lr=config.qat_lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()
    step = 0
    per_epoch = -(-len(datamodule.split("train")) // datamodule.batch_size)
    for epoch in range(epochs):
        batches = datamodule.normalized_batches("train", shuffle=True, seed=datamodule.seed + epoch, device=device)
        total = per_epoch if max_steps is None else min(per_epoch, max_steps - step)
        for images, labels in tqdm(batches, desc=f"qat: epoch {epoch + 1}/{epochs}", total=total,
                                   disable=not progress, leave=False):
            loss = criterion(prepared(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if max_steps is not None and step >= max_steps:
            break
    return convert_to_program(prepared, example)


class QAT(PT2EMethod):
    """``qat``: :func:`quantize_qat` for ``config.qat_epochs`` (at most ``config.qat_max_steps`` steps)."""

    name = "qat"
    label = "PyTorch QAT (PT2E, plain PyTorch loop)"
    default_observer = QAT_OBSERVER

    def fine_tune(self, job: QuantizeJob) -> ExportedProgram:
        """The checkpoint's model fine-tuned with fake quantization, converted to int8."""
        return quantize_qat(job.net, job.datamodule, job.config, progress=job.progress)

    def program(self, job: QuantizeJob) -> tuple[ExportedProgram, dict[str, Any]]:
        if job.config.qat_max_steps == 0:
            raise ValueError(f"{self.name}: --quant.qat_max_steps 0 leaves nothing to fine-tune; give 1 or more "
                             "(0 only tells --method auto to skip QAT)")
        return self.fine_tune(job), {"fine_tuning": job.config.fine_tuning(),
                                     "quantizer": QUANTIZER_NAME}


register_method(QAT())
