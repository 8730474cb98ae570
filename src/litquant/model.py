"""The classic MNIST CNN as a plain ``nn.Module`` and the ``LightningModule`` that trains it.

Example::

    import lightning.pytorch as L
    from litquant.data import MNISTDataModule
    from litquant.model import MNISTClassifier

    model = MNISTClassifier()                      # hyper-parameters are saved in every checkpoint
    trainer = L.Trainer(max_epochs=1)
    trainer.fit(model, datamodule=MNISTDataModule(train_size=2000))
    best = MNISTClassifier.load_from_checkpoint(trainer.checkpoint_callback.best_model_path)
"""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

__all__ = ["MNISTClassifier", "Net"]


class Net(nn.Module):
    """conv(1→32, 3×3) → ReLU → conv(32→64, 3×3) → ReLU → max-pool 2 → dropout → fc(9216→128) → ReLU →
    dropout → fc(128→10). Returns logits (no ``log_softmax``: it has no int8 kernel and the loss adds it)."""

    def __init__(self, num_classes: int = 10, dropout1: float = 0.25, dropout2: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.dropout1 = nn.Dropout(dropout1)
        self.flatten = nn.Flatten(1)
        self.fc1 = nn.Linear(9216, 128)
        self.relu3 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout2)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.pool(self.relu2(self.conv2(x)))
        x = self.flatten(self.dropout1(x))
        x = self.dropout2(self.relu3(self.fc1(x)))
        return self.fc2(x)


class MNISTClassifier(L.LightningModule):
    """Trains :class:`Net` (kept as ``self.model``) with cross-entropy; logs loss and accuracy per split.

    Args:
        lr: peak learning rate.
        optimizer: ``adamw``, ``adam``, ``sgd`` (momentum 0.9, Nesterov) or ``adadelta`` (the PyTorch
            example's choice, use ``lr=1.0``).
        weight_decay: decoupled (AdamW) or L2 weight decay.
        scheduler: ``onecycle`` (warm-up then cosine decay over the whole fit), ``step`` (×``gamma`` every
            epoch, the PyTorch example's) or ``none``.
        gamma: decay factor of the ``step`` schedule.
        label_smoothing: cross-entropy label smoothing.
        num_classes: number of output classes.
        channels_last: train with weights and images in the ``channels_last`` memory format (faster convolutions
            under bf16 on CPUs with native bf16; ``litquant fit`` sets it with the precision it chooses).
    """

    def __init__(
        self,
        lr: float = 3e-3,
        optimizer: Literal["adamw", "adam", "sgd", "adadelta"] = "adamw",
        weight_decay: float = 1e-4,
        scheduler: Literal["onecycle", "step", "none"] = "onecycle",
        gamma: float = 0.7,
        label_smoothing: float = 0.0,
        num_classes: int = 10,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = Net(num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        #: the one-cycle schedule length of the checkpoint a fit resumes from (``None``: not resuming)
        self.resumed_schedule_steps: int | None = None
        self.metrics = nn.ModuleDict(
            {f"{split}_acc": MulticlassAccuracy(num_classes, average="micro") for split in ("train", "val", "test")}
        )
        self.example_input_array = torch.zeros(1, 1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _shared_step(self, batch, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Log the loss and accuracy of ``batch`` for ``split``; return the loss and the logits."""
        images, labels = batch
        if self.hparams.get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)
        logits = self(images)
        loss = self.criterion(logits, labels)
        accuracy = self.metrics[f"{split}_acc"]
        # update(), not forward(): only the epoch value is logged, and forward() also computes a per-batch
        # value nobody reads (measured: ~2 ms against ~0.5 ms a step for a batch of 128 on a 2-core CPU).
        accuracy.update(logits, labels)
        on_step = split == "train"
        batch_size = len(labels)
        self.log(f"{split}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step or split == "val",
                 batch_size=batch_size)
        self.log(f"{split}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=split == "val",
                 batch_size=batch_size)
        return loss, logits

    def on_fit_start(self) -> None:
        if self.hparams.get("channels_last"):
            self.model.to(memory_format=torch.channels_last)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")[0]

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """The loss, and the predicted classes for callbacks such as
        :class:`~litquant.callbacks.ConfusionMatrix`."""
        loss, logits = self._shared_step(batch, "test")
        return {"loss": loss, "predictions": logits.argmax(dim=1)}

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the random-number state, so a resumed fit continues exactly as an uninterrupted one would."""
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def _started(self, resumed_steps: int) -> str:
        """`` (--trainer.max_epochs N with this data)`` when the resumed schedule's steps are a whole number of
        this fit's epochs (a run started with a default length gives no number to repeat); else empty."""
        trainer = self.trainer
        epochs = trainer.max_epochs
        if trainer.max_steps not in (None, -1) or not epochs or epochs < 1:
            return ""
        per_epoch = int(trainer.estimated_stepping_batches) // epochs
        if per_epoch < 1 or per_epoch * epochs != int(trainer.estimated_stepping_batches) or resumed_steps % per_epoch:
            return ""
        return f" (--trainer.max_epochs {resumed_steps // per_epoch} with this data)"

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self._trainer is None or self.trainer.state.fn != "fit":
            return  # only a resumed fit restores the random state, never a load for inference
        self.resumed_schedule_steps = next(
            (s["total_steps"] for s in checkpoint.get("lr_schedulers", []) if "total_steps" in s), None)
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])

    def configure_optimizers(self):
        params = self.parameters()
        hp = self.hparams
        if hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, nesterov=True, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adadelta":
            optimizer = torch.optim.Adadelta(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {hp.optimizer!r}: choose adamw, adam, sgd or adadelta")
        if hp.scheduler == "none":
            return optimizer
        if hp.scheduler == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=hp.gamma)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if hp.scheduler == "onecycle":
            estimated = self.trainer.estimated_stepping_batches
            if estimated == float("inf"):
                raise ValueError("the one-cycle schedule needs the fit's length: give --trainer.max_epochs or "
                                 "--trainer.max_steps (--trainer.max_time may cap either), or use "
                                 "--model.scheduler step or none")
            total_steps = max(1, int(estimated))
            resumed = self.resumed_schedule_steps
            if resumed is not None and resumed != total_steps:
                raise ValueError(
                    f"the checkpoint's one-cycle schedule spans {resumed} steps but this fit has {total_steps}: "
                    f"resume with the --trainer.max_epochs and data size it was started with{self._started(resumed)}"
                )
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=total_steps,
                                                            pct_start=0.15)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        raise ValueError(f"unknown scheduler {hp.scheduler!r}: choose onecycle, step or none")
