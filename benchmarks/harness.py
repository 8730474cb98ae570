"""What the benchmark scripts share: data flags, alternating runs, medians, Markdown tables.

Competitors run in one process, alternately and in a rotating order, so that a noisy shared machine
slows them alike; the scripts quote medians and ratios of medians.

Example::

    from harness import alternate, median
    times = alternate({"a": lambda: {"seconds": 1.0}, "b": lambda: {"seconds": 2.0}}, rounds=3)
    print(median(r["seconds"] for r in times["b"]) / median(r["seconds"] for r in times["a"]))
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import lightning.pytorch as L
from environment import RESULTS

from litquant.data import MNISTDataModule
from litquant.files import write_text
from litquant.model import MNISTClassifier

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def default_data_dir() -> str | None:
    """``$LITQUANT_TEST_DATA``, else the ``shared/data`` folder beside the checkout, else the product's default."""
    if env := os.environ.get("LITQUANT_TEST_DATA"):
        return env
    return str(SHARED_DATA) if (SHARED_DATA / "MNIST" / "raw").is_dir() else None


def add_data_arguments(parser: argparse.ArgumentParser, train_size: int | None, val_size: int = 5000,
                       test_size: int | None = None) -> None:
    """``--data_dir``, ``--train_size``, ``--val_size``, ``--test_size``, ``--seed`` (``0`` sizes mean all)."""
    parser.add_argument("--data_dir", "--data.data_dir", dest="data_dir", default=default_data_dir(),
                        help="folder with the MNIST .gz files (default: ../shared/data or the product's cache)")
    parser.add_argument("--train_size", type=int, default=train_size, help="training samples (0: all 55,000)")
    parser.add_argument("--val_size", type=int, default=val_size, help="validation samples held out")
    parser.add_argument("--test_size", type=int, default=test_size, help="test samples (0: all 10,000)")
    parser.add_argument("--seed", type=int, default=42)


def datamodule(args: argparse.Namespace, **overrides) -> MNISTDataModule:
    """A set-up :class:`MNISTDataModule` from the data flags (the files are read once, here)."""
    dm = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size or None, val_size=args.val_size,
                         test_size=args.test_size or None, seed=args.seed, **overrides)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def fp32_checkpoint(args: argparse.Namespace, dm: MNISTDataModule, out: Path) -> str:
    """``--ckpt_path`` when given, else the best checkpoint of one epoch trained here under ``out``."""
    if args.ckpt_path is not None:
        return args.ckpt_path
    trainer = L.Trainer(max_epochs=1, default_root_dir=out, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(MNISTClassifier(), datamodule=dm)
    return trainer.checkpoint_callback.best_model_path


def alternate(variants: dict[str, Callable[[], dict]], rounds: int) -> dict[str, list[dict]]:
    """Run every variant once per round, the order rotating each round; return each variant's results."""
    names = list(variants)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
            print(f"round {round_index + 1}/{rounds} {name}: "
                  + ", ".join(f"{k}={_short(v)}" for k, v in results[name][-1].items()), flush=True)
    return results


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub Markdown table; floats are printed with 4 significant digits."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_short(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_markdown(name: str, title: str, body: str, environment: dict) -> Path:
    """``results/<name>.md``: a title, the environment line, the command, then ``body``."""
    cpu = environment["cpu"]
    versions = ", ".join(f"{k} {v}" for k, v in environment["versions"].items() if v)
    header = (f"# {title}\n\n{cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['flags'])}), "
              f"{environment['torch_threads']} torch threads; {versions}; {environment['date']}.\n\n"
              f"Command: `{environment['command']}`\n\n")
    path = RESULTS / f"{name}.md"
    write_text(path, header + body)
    print(f"wrote {path}")
    return path


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
