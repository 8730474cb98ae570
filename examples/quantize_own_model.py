"""Chapter 9: your own LightningModule through the ``QuantizationAwareTraining`` callback, then reloaded with torch.

The model is written as a Lightning user writes one: a small ResNet whose blocks call one ``self.relu`` twice (as
torchvision's ``BasicBlock`` does), returning two outputs, the class logits and an embedding. It is trained in
fp32 for one epoch, fine-tuned with the callback (its defaults, ``logits_output=0`` naming the logits), tested in
int8, saved as ``.pt2`` and reloaded in a fresh process that imports torch and the one module that registers
the int8 ops::

    python examples/quantize_own_model.py --train_size 2000 --test_size 1000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import torch
from torch import nn
from torch.nn import functional as F

from litquant import quiet_libraries
from litquant.artifacts.loading import read_description
from litquant.data import MNISTDataModule


class Block(nn.Module):
    """A torchvision-style basic block: one ``ReLU`` module called twice, a residual add."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class TinyResNet(L.LightningModule):
    """Returns ``(logits, embedding)``."""

    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.blocks = nn.Sequential(Block(1, 16, 2), Block(16, 32, 2))
        self.embed = nn.Linear(32, 32)
        self.classify = nn.Linear(32, 10)
        self.example_input_array = torch.zeros(2, 1, 28, 28)  # what the callback captures forward with

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(torch.flatten(F.adaptive_avg_pool2d(self.blocks(x), 1), 1))
        return self.classify(torch.relu(embedding)), embedding

    def training_step(self, batch, batch_idx):
        images, labels = batch
        return F.cross_entropy(self(images)[0], labels)

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        self.log("val_acc", (self(images)[0].argmax(1) == labels).float().mean())

    def test_step(self, batch, batch_idx):
        images, labels = batch
        self.log("test_acc", (self(images)[0].argmax(1) == labels).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


#: What a user's program runs to load the artifact: torch, plus the module that registers the int8 ops.
RELOAD = """
import sys, json, torch
import torch.ao.quantization.fx._decomposed  # registers the quantized_decomposed ops of the int8 graph
images = torch.load(sys.argv[2], weights_only=True)
logits, embedding = torch.export.load(sys.argv[1]).module()(images)
print(json.dumps(logits.argmax(1).tolist()))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=2000, help="training samples")
    parser.add_argument("--test_size", type=int, default=1000, help="test samples")
    parser.add_argument("--out", default="out/examples/own-model", help="folder for the .pt2")
    args = parser.parse_args(argv)
    quiet_libraries()  # torchao's CUDA-only libraries not loading on a CPU torch, Lightning's notes on its internals
    from litquant.callbacks import QuantizationAwareTraining  # imports torchao: after the logs are quieted

    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=200,
                           test_size=args.test_size, batch_size=64)
    options = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                   limit_val_batches=0, num_sanity_val_steps=0)
    model = TinyResNet()
    L.Trainer(max_epochs=1, **options).fit(model, datamodule=data)
    fp32 = L.Trainer(**options).test(model, datamodule=data, verbose=False)[0]["test_acc"]

    qat = QuantizationAwareTraining(logits_output=0)  # output 0 of the tuple is the class logits
    trainer = L.Trainer(max_steps=20, callbacks=[qat], **options)
    trainer.fit(model, datamodule=data)  # fake-quantized fine-tuning, then int8
    int8 = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
    print(f"test accuracy: fp32 {fp32:.3f}, int8 after the callback {int8:.3f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = qat.save(out / "own-model.pt2")
    signature = read_description(path).signature
    print("inputs:", [(s.name, list(s.shape)) for s in signature.inputs])
    print("outputs:", [(s.name, list(s.shape)) for s in signature.outputs], f"({signature.structure}), "
          f"class logits: {signature.logits}")

    images = data.normalize(data.split("test").images[:100].unsqueeze(1))
    torch.save(images, out / "images.pt")
    with torch.no_grad():
        expected = model(images)[0].argmax(1).tolist()
    fresh = subprocess.run([sys.executable, "-c", RELOAD, str(path), str(out / "images.pt")], check=True,
                           capture_output=True, text=True)
    reloaded = json.loads(fresh.stdout.splitlines()[-1])
    agree = sum(a == b for a, b in zip(expected, reloaded, strict=True)) / len(expected)
    print(f"reloaded with torch in a fresh process: {agree:.0%} of {len(expected)} predictions agree")


if __name__ == "__main__":
    main()
