"""Chapter 6: loggers. List Lightning's loggers and their backends, then log a run to CSV and plot it.

A logger is given to the Trainer like a callback (``Trainer(logger=...)``, or a list of them); every
``self.log(...)`` in the model goes to each of them::

    python examples/loggers_catalog.py --catalog_out out/examples/loggers_info --max_epochs 3
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from litquant.callbacks import MetricsReport
from litquant.catalog import format_catalog, logger_catalog
from litquant.data import MNISTDataModule
from litquant.files import write_text
from litquant.model import MNISTClassifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog_out", default="out/examples/loggers_info", help="folder for loggers.md and .json")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--val_size", type=int, default=5000)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="out/examples/loggers", help="folder for the logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    catalog = logger_catalog()
    for fmt, suffix in (("markdown", "md"), ("json", "json")):
        write_text(Path(args.catalog_out) / f"loggers.{suffix}", format_catalog(catalog, fmt) + "\n")
    for entry in catalog:
        status = "installed" if entry["installed"] else f"not installed: {entry['install']}"
        print(f"{entry['name']:<18} {entry['backend'] or 'built in'} ({status})")

    L.seed_everything(args.seed, verbose=False)
    loggers = [CSVLogger(args.out, name="csv")]
    if next(e for e in catalog if e["name"] == "TensorBoardLogger")["installed"]:
        loggers.append(TensorBoardLogger(args.out, name="tensorboard"))
    trainer = L.Trainer(max_epochs=args.max_epochs, logger=loggers, callbacks=[MetricsReport(verbose=False)],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
                           seed=args.seed)
    trainer.fit(MNISTClassifier(), datamodule=data)

    log_dir = Path(loggers[0].log_dir)
    print(f"\nlogged to: {', '.join(type(logger).__name__ for logger in loggers)}; per-epoch table:")
    print((log_dir / "metrics_table.md").read_text(), end="")
    print(f"plots: {log_dir / 'loss.png'}, {log_dir / 'acc.png'}")


if __name__ == "__main__":
    main()
