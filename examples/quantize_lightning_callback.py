"""Chapter 7, method 3: quantization-aware training inside a Trainer, with the ``QuantizationAwareTraining``
callback (litquant's Lightning 2.x replacement of the callback Lightning removed).

The callback fake-quantizes the LightningModule while the Trainer fine-tunes it, and converts it to int8 when
``fit`` ends: the same module then runs int8 in ``trainer.test`` and in plain PyTorch::

    python examples/quantize_lightning_callback.py --ckpt_path out/examples/ckpt/checkpoints/final.ckpt
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint

from litquant.artifacts.loading import load_artifact
from litquant.callbacks import QuantizationAwareTraining
from litquant.checkpoints import checkpoint_argument
from litquant.data import MNISTDataModule
from litquant.evaluation import ArtifactModule, evaluate
from litquant.model import MNISTClassifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, type=checkpoint_argument,
                        help="the trained fp32 checkpoint: a .ckpt path, or `last` (the newest run's last.ckpt)")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--val_size", type=int, default=5000, help="training samples held out for validation")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--max_steps", type=int, default=100, help="fine-tuning steps")
    parser.add_argument("--no_compile", action="store_true", help="reload without inductor compilation")
    parser.add_argument("--out", default="out/examples/lightning-qat", help="folder for checkpoints and the .pt2")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
                           test_size=args.test_size, batch_size=256)
    model = MNISTClassifier.load_from_checkpoint(args.ckpt_path, map_location="cpu", weights_only=True,
                                                 lr=1e-4)  # fine-tuning: a small learning rate
    qat = QuantizationAwareTraining(observer_type="histogram", input_compatible=True)  # as in the tutorial
    last = ModelCheckpoint(save_last=True)  # OUT/checkpoints/last.ckpt, which ckpt_path="last" below reloads
    trainer = L.Trainer(max_steps=args.max_steps, callbacks=[qat, last], default_root_dir=args.out, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)  # fake-quantized fine-tuning, int8 conversion at the end

    print(f"int8 (plain PyTorch, the converted module): test_acc {evaluate(model, data):.4f}")
    # The same int8 model in the Trainer, from the checkpoint: it holds the fp32 layout and the observed ranges,
    # and the callback converts it to int8 again after loading.
    trainer.test(model, datamodule=data, ckpt_path="last")
    print(f"tested {trainer.ckpt_path}")
    path = qat.save(Path(args.out) / "lightning-qat.pt2")
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    loaded = load_artifact(path, compile=not args.no_compile)
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(ArtifactModule(loaded), datamodule=data)


if __name__ == "__main__":
    main()
