"""Chapter 1-3: model design -> Trainer set-up -> training in one line -> save -> reload for inference.

Train, test and save the weights (``torch.save(model.state_dict(), PATH)``)::

    python examples/basic_usage.py --max_epochs 1 --out out/examples/basic

Reload the saved weights and only test (the original tutorial's ``--load_model MODEL_PATH``)::

    python examples/basic_usage.py --load_model out/examples/basic/model.pt
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.loggers import CSVLogger

from litquant.callbacks import MetricsReport
from litquant.data import MNISTDataModule
from litquant.files import atomic_path
from litquant.model import MNISTClassifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--val_size", type=int, default=5000, help="training samples held out for validation")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="out/examples/basic", help="folder for the logs and model.pt")
    parser.add_argument("--load_model", metavar="MODEL_PATH", help="skip training: load this state_dict and test")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    L.seed_everything(args.seed, verbose=False)
    out = Path(args.out)

    # 1. Model design: the LightningModule wraps the plain nn.Module `Net` as `self.model`; the data lives in
    #    a LightningDataModule (the original tutorial's train/val/test_dataloader methods, in their own class).
    model = MNISTClassifier(lr=args.lr)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
                           test_size=args.test_size, batch_size=args.batch_size, seed=args.seed)

    # 2. Trainer set-up: devices, epochs, logger and callbacks; everything except the model.
    trainer = L.Trainer(max_epochs=args.max_epochs, accelerator="auto", devices=1, default_root_dir=out,
                        logger=CSVLogger(out, name="logs"), callbacks=[MetricsReport()],
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)

    if args.load_model:
        # Reload trained weights exactly as in plain PyTorch, then test with the Trainer.
        model.load_state_dict(torch.load(args.load_model, map_location="cpu", weights_only=True))
        trainer.test(model, datamodule=data)
        return

    # 3. Training: the whole PyTorch training loop is this one line.
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data)

    # Save the weights as in PyTorch (written atomically: no half-written file after a crash).
    with atomic_path(out / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    print(f"saved {out / 'model.pt'}; reload with: python examples/basic_usage.py --load_model {out / 'model.pt'}")


if __name__ == "__main__":
    main()
