"""A zoo of small LightningModules in the style of well-known architectures, written as a Lightning user writes
theirs: what the QAT callback, PTQ and ``litquant quantize`` must handle beyond litquant's own ``Net``.

Every model classifies MNIST images ``[N, 1, 28, 28]`` (normalised) into 10 classes, has fewer than 1 M
parameters and an ``example_input_array``. :class:`ZooModule` holds the Lightning side (steps, optimiser);
``inputs`` and ``logits`` adapt a batch of images to models with a second input or a second output.
:class:`ZooData` is MNIST as a user's own data module (``litquant quantize --data model_zoo.ZooData``): its
batches are ``(inputs, target)``, the inputs as the model's ``example_input_array``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from litquant.data import MNISTDataModule

__all__ = ["ZOO", "ZooData", "ZooModule"]


class ZooModule(L.LightningModule):
    """Steps and optimiser shared by the zoo: cross-entropy on the class logits, ``test_acc``/``val_acc``."""

    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.example_input_array: Any = torch.randn(2, 1, 28, 28)

    def inputs(self, images: torch.Tensor) -> tuple[tuple, dict]:
        """``forward``'s arguments for a batch of images."""
        return (images,), {}

    @staticmethod
    def logits(output: Any) -> torch.Tensor:
        """The class logits in ``forward``'s output."""
        return output

    def predict_logits(self, images: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The class logits of a batch of images, or of a batch already in ``forward``'s keyword inputs."""
        args, kwargs = ((), dict(images)) if isinstance(images, Mapping) else self.inputs(images)
        return self.logits(self(*args, **kwargs))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self.predict_logits(images), labels)

    def _accuracy(self, batch: Any, name: str) -> None:
        images, labels = batch
        self.log(name, (self.predict_logits(images).argmax(1) == labels).float().mean())

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._accuracy(batch, "val_acc")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._accuracy(batch, "test_acc")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


# -- ResNet: torchvision-style BasicBlock, one ReLU module called twice ---------------------------------
class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)  # called twice, as in torchvision
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None if stride == 1 and channels_in == channels else nn.Sequential(
            nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(ZooModule):
    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__(lr)
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.layers = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 32, stride=2), BasicBlock(32, 32, stride=2))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


# -- MobileNetV3-style: depthwise convs, squeeze-and-excitation, hardswish ---------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class InvertedResidual(nn.Module):
    def __init__(self, channels_in: int, expanded: int, channels: int, stride: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(channels_in, expanded, 1, bias=False), nn.BatchNorm2d(expanded),
                                    nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv2d(expanded, expanded, 3, stride, 1, groups=expanded, bias=False),
                                       nn.BatchNorm2d(expanded), nn.Hardswish())
        self.se = SqueezeExcite(expanded, max(8, expanded // 4))
        self.project = nn.Sequential(nn.Conv2d(expanded, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.residual = stride == 1 and channels_in == channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.residual else out


class MobileNetV3(ZooModule):
    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__(lr)
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(InvertedResidual(16, 48, 16, 1), InvertedResidual(16, 64, 24, 2),
                                    InvertedResidual(24, 72, 24, 1))
        self.head = nn.Sequential(nn.Linear(24, 64), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


# -- a small ViT: 7x7 patches, nn.TransformerEncoder (attention dropout, layer norm, gelu) ------------------
class ViT(ZooModule):
    def __init__(self, lr: float = 2e-3, width: int = 64, depth: int = 2, heads: int = 4) -> None:
        super().__init__(lr)
        self.patches = nn.Conv2d(1, width, 7, 7)  # 16 patches
        self.position = nn.Parameter(torch.zeros(1, 16, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.1, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2) + self.position
        return self.head(self.norm(self.encoder(tokens).mean(1)))


# -- an MLP --------------------------------------------------------------------------------------------
class MLP(ZooModule):
    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__(lr)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 128),
                                 nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# -- two inputs: the image positionally, its row profile by keyword ------------------------------------------
class TwoInputs(ZooModule):
    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__(lr)
        self.image = nn.Sequential(nn.Conv2d(1, 16, 5, 2, 2), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                                   nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.profile = nn.Sequential(nn.Linear(28, 32), nn.ReLU())
        self.head = nn.Linear(32 * 4 + 32, 10)
        self.example_input_array = {"image": torch.randn(2, 1, 28, 28), "rows": torch.randn(2, 28)}

    def inputs(self, images: torch.Tensor) -> tuple[tuple, dict]:
        return (images,), {"rows": images.mean(dim=(1, 3))}

    def forward(self, image: torch.Tensor, *, rows: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.image(image), self.profile(rows)], 1))


# -- two outputs: class logits and an embedding, as a tuple or a dict --------------------------------------
class TwoOutputs(ZooModule):
    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__(lr)
        self.features = nn.Sequential(nn.Conv2d(1, 16, 5, 2, 2), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 32))
        self.classifier = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.features(x)
        return self.classifier(torch.relu(embedding)), embedding

    @staticmethod
    def logits(output: Any) -> torch.Tensor:
        return output[0]


class DictOutputs(TwoOutputs):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        logits, embedding = super().forward(x)
        return {"embedding": embedding, "logits": logits}

    @staticmethod
    def logits(output: Any) -> torch.Tensor:
        return output["logits"]


#: name -> class, in the order of the docs' table.
ZOO: dict[str, type[ZooModule]] = {"resnet": ResNet, "mobilenetv3": MobileNetV3, "vit": ViT, "mlp": MLP,
                                   "two_inputs": TwoInputs, "tuple_outputs": TwoOutputs,
                                   "dict_outputs": DictOutputs}


class ZooData(L.LightningDataModule):
    """A small real-MNIST data module written as a user writes one: plain ``DataLoader`` batches of
    ``(inputs, target)``, normalised images, or with ``rows`` the keyword inputs of :class:`TwoInputs`
    (``{"image": ..., "rows": ...}``)."""

    def __init__(self, data_dir: str | None = None, train_size: int = 512, val_size: int = 256, test_size: int = 256,
                 batch_size: int = 64, rows: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.mnist = MNISTDataModule(data_dir=data_dir, train_size=train_size, val_size=val_size, test_size=test_size,
                                     batch_size=batch_size, augment_shift=0, download=False, allow_fallback=False)

    def setup(self, stage: str | None = None) -> None:
        self.mnist.setup(stage)

    def _collate(self, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[Any, torch.Tensor]:
        images, labels = torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])
        if self.hparams.rows:
            return {"image": images, "rows": images.mean(dim=(1, 3))}, labels
        return images, labels

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        data = self.mnist.split(split)
        images = self.mnist.normalize(data.images.unsqueeze(1))
        return DataLoader(TensorDataset(images, data.labels), batch_size=self.hparams.batch_size, shuffle=shuffle,
                          collate_fn=self._collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
