"""Chapter 4b: load a ``.ckpt`` with ``load_from_checkpoint`` and test it with a Trainer.

``MNISTClassifier`` calls ``save_hyperparameters()``, so the checkpoint holds its constructor arguments:
``load_from_checkpoint(path)`` needs none (the original tutorial had to pass them again)::

    python examples/checkpoint_load.py --ckpt_path out/examples/ckpt/checkpoints/final.ckpt
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse

import lightning.pytorch as L

from litquant.data import MNISTDataModule
from litquant.model import MNISTClassifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, help="a .ckpt written by a Trainer")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--batch_size", type=int, default=256)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # A classmethod: called on the class, with no constructor arguments. Keyword arguments, if any,
    # override the saved hyper-parameters, e.g. load_from_checkpoint(path, lr=1e-4). weights_only=True:
    # the file is read as data, nothing in it can run code.
    model = MNISTClassifier.load_from_checkpoint(args.ckpt_path, map_location="cpu", weights_only=True)
    model.eval()
    print(f"restored hyper-parameters: {dict(model.hparams)}")

    # The original tutorial's gotcha, as Lightning 2.x reports it: calling it on an instance is an error.
    try:
        MNISTClassifier(lr=0.1).load_from_checkpoint(args.ckpt_path, map_location="cpu", weights_only=True)
    except TypeError as error:
        print(f"MNISTClassifier(...).load_from_checkpoint(...) -> TypeError: {str(error).splitlines()[0]}")

    data = MNISTDataModule(data_dir=args.data_dir, test_size=args.test_size, batch_size=args.batch_size)
    L.Trainer(logger=False, enable_progress_bar=False).test(model, datamodule=data)


if __name__ == "__main__":
    main()
