"""Chapter 5: callbacks. Write the catalog of Lightning's callbacks, then train with a few of them.

Lightning calls a callback's hooks (``on_validation_epoch_end``, ``on_fit_end``...) at fixed points of the
loop, so behaviour is added to a Trainer without touching the model::

    python examples/callbacks_catalog.py --catalog_out out/examples/callbacks_info --max_epochs 3
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from litquant.callbacks import MetricsReport
from litquant.catalog import callback_catalog, format_catalog
from litquant.data import MNISTDataModule
from litquant.files import write_text
from litquant.model import MNISTClassifier


class PrintValidation(Callback):
    """A callback of our own: one line per validation epoch."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            print(f"epoch {trainer.current_epoch}: val_loss {metrics['val_loss']:.4f}  "
                  f"val_acc {metrics['val_acc']:.4f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog_out", default="out/examples/callbacks_info", help="folder for callbacks.md, .json")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--val_size", type=int, default=5000)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="out/examples/callbacks", help="folder for logs and checkpoints")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    catalog = callback_catalog()
    for fmt, suffix in (("markdown", "md"), ("json", "json")):
        write_text(Path(args.catalog_out) / f"callbacks.{suffix}", format_catalog(catalog, fmt) + "\n")
    print(f"{len(catalog)} callbacks described in {args.catalog_out}/callbacks.md and callbacks.json")

    L.seed_everything(args.seed, verbose=False)
    callbacks = [
        EarlyStopping(monitor="val_loss", mode="min", patience=2),  # stop when val_loss stalls
        LearningRateMonitor(logging_interval="epoch"),  # logs lr-AdamW to the logger
        ModelCheckpoint(monitor="val_acc", mode="max"),  # keeps the best epoch
        MetricsReport(verbose=False),  # litquant's: table and plots at the end of fit
        PrintValidation(),
    ]
    trainer = L.Trainer(max_epochs=args.max_epochs, default_root_dir=args.out, callbacks=callbacks,
                        logger=CSVLogger(args.out, name="logs"), enable_progress_bar=False,
                        enable_model_summary=False)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
                           seed=args.seed)
    trainer.fit(MNISTClassifier(), datamodule=data)
    early_stopping, _, checkpoint, report, _ = callbacks
    stopped = early_stopping.stopped_epoch
    print(f"early stopping: {f'stopped at epoch {stopped}' if stopped else 'not triggered'}")
    print(f"best checkpoint: {Path(checkpoint.best_model_path).name}")
    print(f"report: {', '.join(sorted(path.name for path in report.paths.values()))}")


if __name__ == "__main__":
    main()
