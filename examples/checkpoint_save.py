"""Chapter 4a: save checkpoints with several ``ModelCheckpoint`` callbacks.

One callback keeps the 3 lowest ``val_loss``, one the 3 highest ``val_acc``, one saves the weights only
(no optimizer state) every epoch; ``trainer.save_checkpoint`` writes one last file by hand::

    python examples/checkpoint_save.py --max_epochs 3 --out out/examples/ckpt
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--val_size", type=int, default=5000, help="training samples held out for validation")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="out/examples/ckpt", help="the checkpoints go to OUT/checkpoints")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    L.seed_everything(args.seed, verbose=False)
    dirpath = Path(args.out) / "checkpoints"
    best_loss = ModelCheckpoint(dirpath=dirpath, monitor="val_loss", mode="min", save_top_k=3,
                                filename="{epoch:02d}-{val_loss:.4f}")  # -> epoch=02-val_loss=0.1234.ckpt
    best_acc = ModelCheckpoint(dirpath=dirpath, monitor="val_acc", mode="max", save_top_k=3,
                               filename="{epoch:02d}-{val_acc:.4f}")
    weights = ModelCheckpoint(dirpath=dirpath, save_top_k=-1, save_weights_only=True,  # every epoch
                              filename="weights-{epoch:02d}")
    trainer = L.Trainer(max_epochs=args.max_epochs, default_root_dir=args.out, logger=False,
                        callbacks=[best_loss, best_acc, weights], enable_model_summary=False, enable_progress_bar=False)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
                           batch_size=args.batch_size, seed=args.seed)
    trainer.fit(MNISTClassifier(), datamodule=data)
    trainer.save_checkpoint(dirpath / "final.ckpt", weights_only=False)  # the state at the end of training

    for callback in (best_loss, best_acc):
        print(f"best {callback.monitor}: {Path(callback.best_model_path).name} ({callback.best_model_score:.4f})")
    print(f"{'file':<32} {'MB':>5}  contents")
    for path in sorted(dirpath.glob("*.ckpt")):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        contents = "weights only" if "optimizer_states" not in checkpoint else "weights + optimizer + loops"
        print(f"{path.name:<32} {path.stat().st_size / 1e6:5.1f}  {contents}")


if __name__ == "__main__":
    main()
