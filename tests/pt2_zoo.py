"""Small exported programs beyond MNIST's ``Net``, for the ``.pt2`` tests: a residual block, hardswish with
squeeze-excite, a transformer layer with attention and symbolic sizes, two inputs with tuple and dict outputs, and
operators with several results, keyword arguments and a buffer the model updates; each exported as it is (fp32)
or quantized with PT2E (int8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["MODELS", "program_of", "tensors", "zoo"]

#: The models of :func:`zoo` and whether each quantizes (the ones with several inputs or a buffer do not).
MODELS = {"residual": True, "hardswish-se": True, "transformer": True, "two-inputs-tuple-dict-out": False,
          "several-results": False}


class _Lambda(nn.Module):
    def __init__(self, forward, *modules: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self._forward = forward

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self._forward(*inputs)


class _SeveralResults(nn.Module):
    """Operators with several results (a list, a tuple), keyword arguments, dtypes, a constant and a buffer it
    updates on each call."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28, 8)
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> Any:
        self.calls.add_(1)
        h = self.linear(x.reshape(x.shape[0], 28, 28))
        left, right = torch.chunk(h, 2, dim=-1)
        values, indices = torch.max(left, dim=1)
        low, high = torch.aminmax(right, dim=-1, keepdim=True)
        scaled = (right - low) / (high - low + 1e-5)
        steps = torch.arange(8, dtype=torch.float32).to(memory_format=torch.contiguous_format)
        return {"values": values * self.calls + steps[:4], "indices": indices.to(torch.float32),
                "scaled": scaled.clamp(min=-torch.inf, max=3.0).sum(dim=-1, keepdim=False)}


def zoo(model: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """One model of :data:`MODELS` (seeded) and example inputs of batch 2."""
    torch.manual_seed(0)
    image = (torch.randn(2, 1, 28, 28),)
    if model == "residual":
        conv = nn.Conv2d(1, 8, 3, padding=1)
        block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        head = nn.Linear(8, 10)

        def residual(x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(conv(x))
            return head((y + block(y)).mean((2, 3)))
        return _Lambda(residual, conv, block, head), image
    if model == "hardswish-se":
        conv, squeeze, excite, head = nn.Conv2d(1, 8, 3), nn.Linear(8, 4), nn.Linear(4, 8), nn.Linear(8, 10)

        def forward(x: torch.Tensor) -> torch.Tensor:
            y = nn.functional.hardswish(conv(x))
            w = nn.functional.hardsigmoid(excite(torch.relu(squeeze(y.mean((2, 3))))))
            return head((y * w[:, :, None, None]).mean((2, 3)))
        return _Lambda(forward, conv, squeeze, excite, head), image
    if model == "transformer":
        embed, layer, head = nn.Linear(28, 32), nn.TransformerEncoderLayer(32, 4, 64, 0.0, batch_first=True), \
            nn.Linear(32, 10)

        def forward(x: torch.Tensor) -> torch.Tensor:
            h = layer(embed(x.reshape(x.shape[0], 28, 28)))
            q = h.view(x.shape[0], 28, 4, 8).transpose(1, 2)
            h = nn.functional.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape[0], 28, 32)
            return head(nn.functional.gelu(h.mean(1), approximate="tanh")).softmax(-1)
        return _Lambda(forward, embed, layer, head), image
    if model == "several-results":
        return _SeveralResults(), image
    first, second = nn.Linear(784, 10), nn.Linear(3, 10)

    def two(x: torch.Tensor, y: torch.Tensor) -> Any:
        logits = first(x.flatten(1)) + second(y)
        return logits, {"logits": logits, "aux": logits.sum(1)}
    return _Lambda(two, first, second), (*image, torch.randn(2, 3))


def program_of(model: str, precision: str) -> tuple[torch.export.ExportedProgram, tuple[torch.Tensor, ...]]:
    """The exported program of a :func:`zoo` model, as it is (``fp32``) or quantized with PT2E after one
    calibration batch (``int8``), and its example inputs."""
    from litquant.quantization.pt2e import capture, convert_to_program, export_program

    module, inputs = zoo(model)
    module.eval()
    if precision == "fp32":
        return export_program(module, inputs), inputs
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from litquant.quantization.calibration import quantizer_for

    prepared = prepare_pt2e(capture(module, inputs), quantizer_for(is_qat=False))
    with torch.no_grad():
        prepared(*inputs)
    return convert_to_program(prepared, inputs), inputs


def tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a model's output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    return [t for item in items for t in tensors(item)]
