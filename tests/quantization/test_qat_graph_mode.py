"""QAT keeps the model's own dropout probabilities and batch-norm settings in the fake-quantized graph, in
training and evaluation mode, after every switch, in the plain loop and in the Lightning callback."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from quantization_helpers import small_datamodule
from torch import nn
from torch.fx import GraphModule
from torchao.quantization.pt2e import disable_fake_quant, disable_observer
from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

from litquant.callbacks import QuantizationAwareTraining
from litquant.model import MNISTClassifier, Net
from litquant.quantization.calibration import quantizer_for
from litquant.quantization.pt2e import capture, prepare_qat, set_graph_mode
from litquant.quantization.qat import prepare_net_for_qat

EXAMPLE = (torch.randn(2, 1, 28, 28),)


def dropouts(graph: GraphModule) -> list[tuple[float, bool]]:
    """``(p, train)`` of every dropout node, in graph order."""
    return [(node.args[1], node.args[2]) for node in graph.graph.nodes
            if node.op == "call_function" and node.target == torch.ops.aten.dropout.default]


def module_dropouts(module: nn.Module) -> list[float]:
    return [m.p for m in module.modules() if isinstance(m, nn.Dropout)]


class ConvBatchNorm(nn.Module):
    """A conv → batch norm (unusual eps and momentum) → dropout model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4, eps=0.5, momentum=0.3)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.bn(self.conv(x)))


def test_net_dropouts_are_the_modules() -> None:
    assert module_dropouts(Net()) == [0.25, 0.5]


def test_plain_qat_graph_keeps_dropout_through_switches() -> None:
    net = Net()
    prepared = prepare_net_for_qat(net, EXAMPLE)
    assert dropouts(prepared) == [(0.25, True), (0.5, True)]
    for train in (False, True, False, True):
        set_graph_mode(prepared, train=train)
        assert dropouts(prepared) == [(p, train) for p in module_dropouts(net)]


def test_capture_in_eval_mode_keeps_dropout() -> None:
    assert dropouts(capture(Net(), EXAMPLE)) == [(0.25, False), (0.5, False)]


def test_torchao_alone_would_reset_dropout() -> None:
    """The reason for ``set_graph_mode``: torchao's switch writes p=0.5 (pytorch/ao#2980). If this fails,
    torchao fixed it and ``set_graph_mode`` could go."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    graph = capture(Net(), EXAMPLE, train=True)
    graph._exported_training = False
    move_exported_model_to_train(graph)
    move_exported_model_to_eval(graph)
    assert [p for p, _ in dropouts(graph)] == [0.5, 0.5]


@pytest.mark.parametrize("keep", [True, False], ids=["prepare_qat", "torchao"])
def test_batch_norm_keeps_eps_and_momentum(keep: bool) -> None:
    """With fake quantization off, the prepared graph in eval mode computes what the module computes; torchao's
    conv/batch-norm fusion alone (eps 1e-5) does not, which shows the check can fail."""
    torch.manual_seed(0)
    model = ConvBatchNorm()
    model.bn.running_mean.fill_(0.2)
    model.bn.running_var.fill_(0.3)
    graph = capture(model, EXAMPLE, train=True)
    prepared = prepare_qat(graph, quantizer_for(is_qat=True)) if keep else prepare_qat_pt2e(
        graph, quantizer_for(is_qat=True))
    batch_norms = [n for n in prepared.graph.nodes if n.target == torch.ops.aten.batch_norm.default]
    assert len(batch_norms) == 1
    for train in (True, False, True, False):
        set_graph_mode(prepared, train=train)
        assert dropouts(prepared) == [(0.1, train)]
        assert batch_norms[0].args[5:8] == ((train, 0.3, 0.5) if keep else (train, 0.1, 1e-5))
    prepared.apply(disable_observer)
    prepared.apply(disable_fake_quant)
    with torch.no_grad():
        same = torch.allclose(prepared(*EXAMPLE), model.eval()(*EXAMPLE), atol=1e-5)
    assert same is keep


class DropoutRecorder(L.Callback):
    """Reads the fake-quantized graph's dropout nodes after every training and validation batch."""

    def __init__(self, qat: QuantizationAwareTraining) -> None:
        self.qat = qat
        self.seen: list[tuple[str, list[tuple[float, bool]]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append(("train", dropouts(self.qat.prepared)))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.seen.append(("val", dropouts(self.qat.prepared)))


def test_callback_keeps_dropout_through_fit(tmp_path: Path, mnist_dir: Path) -> None:
    model = MNISTClassifier(lr=1e-4)
    qat = QuantizationAwareTraining()
    recorder = DropoutRecorder(qat)
    trainer = L.Trainer(max_steps=4, val_check_interval=2, limit_val_batches=1, num_sanity_val_steps=1,
                        default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                        callbacks=[qat, recorder])
    trainer.fit(model, datamodule=small_datamodule(mnist_dir, train_size=256, val_size=128, test_size=64))
    expected = module_dropouts(model.model)
    assert expected == [0.25, 0.5]
    stages = [stage for stage, _ in recorder.seen]
    assert stages == ["val", "train", "train", "val", "train", "train", "val"]  # sanity, then every 2 steps
    for stage, found in recorder.seen:
        assert found == [(p, stage == "train") for p in expected], (stage, found)
