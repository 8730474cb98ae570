"""The Lightning QAT callback: fit, checkpoint round-trips, export, and models with several keyword inputs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from quantization_helpers import small_datamodule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litquant.artifacts.loading import load_artifact
from litquant.callbacks import QuantizationAwareTraining
from litquant.checkpoints import load_classifier
from litquant.evaluation import evaluate
from litquant.model import MNISTClassifier
from litquant.quantization.calibration import CalibrationConfig


def _trainer(root: Path, callbacks: list, **kwargs) -> L.Trainer:
    options = dict(max_epochs=1, default_root_dir=root, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu", devices=1, num_sanity_val_steps=0)
    options.update(kwargs)
    return L.Trainer(callbacks=callbacks, **options)


@pytest.fixture(scope="module")
def qat_fit(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict:
    """Fine-tune the small fp32 model with the callback for 6 steps, keeping the best checkpoint."""
    root = tmp_path_factory.mktemp("qat-fit")
    model = load_classifier(tiny_checkpoint)
    model.hparams.lr = 1e-4
    callback = QuantizationAwareTraining()
    checkpoint = ModelCheckpoint(dirpath=root / "checkpoints", monitor="val_acc", mode="max", save_top_k=1)
    datamodule = small_datamodule(mnist_dir)
    trainer = _trainer(root, [callback, checkpoint], max_steps=6, val_check_interval=3, limit_val_batches=2)
    trainer.fit(model, datamodule=datamodule)
    return {"trainer": trainer, "model": model, "callback": callback, "datamodule": datamodule,
            "best": Path(checkpoint.best_model_path), "root": root}


def test_fit_converts_the_module_to_int8(qat_fit: dict) -> None:
    model, callback, datamodule = qat_fit["model"], qat_fit["callback"], qat_fit["datamodule"]
    program = callback.export()
    weights = {name: t.dtype for name, t in program.state_dict.items() if t.dim() > 1}
    assert weights and set(weights.values()) == {torch.int8}, weights  # no fp32 weight matrix left
    # forward runs the int8 model: same outputs as the exported program
    images = datamodule.normalize(datamodule.split("test").images[:16].unsqueeze(1))
    with torch.no_grad():
        torch.testing.assert_close(model(images), program.module()(images))
    assert evaluate(model, datamodule) > 0.6


def test_test_with_best_checkpoint_after_fit(qat_fit: dict) -> None:
    """Lightning #12896: ``trainer.test(ckpt_path="best")`` after fit with the callback."""
    trainer, model, datamodule = qat_fit["trainer"], qat_fit["model"], qat_fit["datamodule"]
    results = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
    assert results[0]["test_acc"] > 0.6
    qat_fit["test_acc"] = results[0]["test_acc"]
    # the int8 model tested is the one converted from the best checkpoint's weights
    best = torch.load(qat_fit["best"], weights_only=True)
    torch.testing.assert_close(model.model.conv1.weight.detach(), best["state_dict"]["model.conv1.weight"])


def test_checkpoint_reloads_as_the_fp32_module(qat_fit: dict) -> None:
    """Lightning #6457: the QAT checkpoint loads with ``load_from_checkpoint`` into the fp32 module."""
    best = qat_fit["best"]
    state = torch.load(best, weights_only=True)
    assert "ranges" in state["callbacks"]["QuantizationAwareTraining"]
    reloaded = MNISTClassifier.load_from_checkpoint(best, map_location="cpu")
    torch.testing.assert_close(reloaded.model.fc1.weight, state["state_dict"]["model.fc1.weight"])
    assert evaluate(reloaded, qat_fit["datamodule"]) > 0.6


def test_a_fresh_trainer_rebuilds_the_same_int8_model(qat_fit: dict, tmp_path: Path) -> None:
    """A new process-like setup: new module, new callback, ``trainer.test(ckpt_path=...)``."""
    if "test_acc" not in qat_fit:
        test_test_with_best_checkpoint_after_fit(qat_fit)
    trainer = _trainer(tmp_path, [QuantizationAwareTraining()])
    results = trainer.test(MNISTClassifier(), datamodule=qat_fit["datamodule"], ckpt_path=qat_fit["best"],
                           verbose=False)
    assert results[0]["test_acc"] == pytest.approx(qat_fit["test_acc"], abs=1e-6)


def test_a_checkpoint_of_the_other_int8_range_is_refused(qat_fit: dict, tmp_path: Path) -> None:
    """Ranges fine-tuned for 7-bit activations do not fit 8-bit ones: a checkpoint from a CPU of the other kind
    (or made with the other ``reduce_range``) is refused with what to pass, never silently mixed."""
    saved = torch.load(qat_fit["best"], weights_only=True)["callbacks"]["QuantizationAwareTraining"]
    assert saved["reduce_range"] == qat_fit["callback"].range_choice.reduce_range
    other = not saved["reduce_range"]
    trainer = _trainer(tmp_path, [QuantizationAwareTraining(calibration=CalibrationConfig(reduce_range=other))])
    with pytest.raises(ValueError, match=f"fine-tuned with reduce_range={saved['reduce_range']}.*"
                                         "QuantizationAwareTraining\\(calibration=CalibrationConfig"
                                         f"\\(reduce_range={saved['reduce_range']}\\)\\)"):
        trainer.test(MNISTClassifier(), datamodule=qat_fit["datamodule"], ckpt_path=qat_fit["best"], verbose=False)


def test_save_writes_a_loadable_int8_artifact(qat_fit: dict, tmp_path: Path) -> None:
    """Lightning #7552: exporting the int8 model."""
    path = qat_fit["callback"].save(tmp_path / "qat.pt2")
    loaded = load_artifact(path, compile=False)
    assert loaded.meta["method"] == "lightning-qat" and loaded.meta["precision"] == "int8"
    assert evaluate(loaded, qat_fit["datamodule"]) == pytest.approx(evaluate(qat_fit["model"], qat_fit["datamodule"]))


class TwoInputs(L.LightningModule):
    """Classifies a vector from two inputs, the second given by keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Linear(8, 16)
        self.right = nn.Linear(4, 16)
        self.head = nn.Linear(16, 3)
        self.dropout = nn.Dropout(0.1)
        self.example_input_array = {"features": torch.randn(2, 8), "context": torch.randn(2, 4)}

    def forward(self, features: torch.Tensor, *, context: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.left(features) + self.right(context))
        return self.head(self.dropout(hidden))

    def training_step(self, batch, batch_idx):
        features, context, target = batch
        return nn.functional.cross_entropy(self(features, context=context), target)

    def test_step(self, batch, batch_idx):
        features, context, target = batch
        accuracy = (self(features, context=context).argmax(1) == target).float().mean()
        self.log("test_acc", accuracy)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_several_and_keyword_inputs(tmp_path: Path) -> None:
    """Lightning #15862 and #7926: a module with two inputs, one keyword-only."""
    torch.manual_seed(0)
    features, context = torch.randn(256, 8), torch.randn(256, 4)
    target = (features[:, 0] + context[:, 0] > 0).long() + (features[:, 1] > 1).long()
    loader = DataLoader(TensorDataset(features, context, target), batch_size=32)
    model = TwoInputs()
    callback = QuantizationAwareTraining()
    trainer = _trainer(tmp_path, [callback], max_epochs=3, enable_checkpointing=False)
    trainer.fit(model, train_dataloaders=loader)
    accuracy = trainer.test(model, dataloaders=loader, verbose=False)[0]["test_acc"]
    assert accuracy > 0.6
    program = callback.export()
    with torch.no_grad():
        logits = program.module()(features[:5], context=context[:5])  # any batch size, keyword input
        torch.testing.assert_close(logits, model(features[:5], context=context[:5]))
    assert logits.shape == (5, 3)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="qconfig"):
        QuantizationAwareTraining(qconfig="qnnpack")
    with pytest.raises(ValueError, match="observer_enabled_stages"):
        QuantizationAwareTraining(observer_enabled_stages=("training",))
    module = TwoInputs()
    module.example_input_array = None
    with pytest.raises(ValueError, match="example_input_array"):
        QuantizationAwareTraining().prepare(module)


def test_histogram_observers_without_a_trainer() -> None:
    """``observer_type="histogram"``, and the callback's steps called directly: prepare, train, convert."""
    torch.manual_seed(0)
    module = TwoInputs()
    callback = QuantizationAwareTraining(observer_type="histogram")
    callback.prepare(module)
    features, context = torch.randn(64, 8), torch.randn(64, 4)
    module.train()
    module(features, context=context)  # observes the ranges
    module.eval()
    fake_quant = module(features, context=context)
    callback.convert(module)
    torch.testing.assert_close(module(features, context=context), fake_quant, atol=0.05, rtol=0.05)
