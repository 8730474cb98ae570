"""Per-epoch metrics table (CSV and Markdown) and loss/accuracy plots from a ``CSVLogger``'s ``metrics.csv``.

``CSVLogger`` writes the training and the validation metrics of one epoch on separate rows; the table merges
them into one row per epoch. Every file is written atomically.

Example::

    from litquant.callbacks.metrics_tables import write_metrics_report
    paths = write_metrics_report("lightning_logs/version_0")
    print(paths["markdown"].read_text())        # | epoch | train_loss | val_loss | train_acc | val_acc |
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

from litquant.files import atomic_path, write_text

__all__ = ["COLUMNS", "epoch_table", "plot_curves", "write_metrics_report", "write_table"]

COLUMNS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
_METRICS = COLUMNS[1:]


def epoch_table(metrics_csv: str | os.PathLike) -> list[dict]:
    """One row per epoch with ``epoch, train_loss, val_loss, train_acc, val_acc`` (``None`` where not logged).

    Rows without an epoch (e.g. step-level learning-rate logs) and epochs without any of those four metrics
    (e.g. a ``test`` run after ``fit``) are left out. ``train_loss_epoch``-style names count too.
    When an epoch is logged twice (a resumed run), the later value wins.
    """
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        raise FileNotFoundError(f"{metrics_csv}: no such metrics file; train with a CSVLogger first")
    by_epoch: dict[int, dict] = {}
    with open(metrics_csv, newline="") as handle:
        for record in csv.DictReader(handle):
            epoch = _number(record.get("epoch"))
            if epoch is None:
                continue
            values = {}
            for name in _METRICS:
                value = _number(record.get(name))
                if value is None:
                    value = _number(record.get(f"{name}_epoch"))
                if value is not None:
                    values[name] = value
            if values:
                row = by_epoch.setdefault(int(epoch), dict.fromkeys(COLUMNS) | {"epoch": int(epoch)})
                row.update(values)
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def write_table(rows: Sequence[dict], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``metrics_table.csv`` and ``metrics_table.md`` (6 decimals) into ``out_dir``."""
    out_dir = Path(out_dir)
    lines = [",".join(COLUMNS)]
    lines += [",".join("" if row.get(c) is None else repr(row[c]) for c in COLUMNS) for row in rows]
    csv_path = write_text(out_dir / "metrics_table.csv", "\n".join(lines) + "\n")
    markdown = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join(["---:"] * len(COLUMNS)) + " |",
    ]
    for row in rows:
        cells = [str(row["epoch"])] + ["-" if row.get(c) is None else f"{row[c]:.6f}" for c in _METRICS]
        markdown.append("| " + " | ".join(cells) + " |")
    md_path = write_text(out_dir / "metrics_table.md", "\n".join(markdown) + "\n")
    return csv_path, md_path


def plot_curves(rows: Sequence[dict], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Draw ``loss.png`` and ``acc.png`` (train and val per epoch) into ``out_dir``, without a display."""
    out_dir = Path(out_dir)
    loss = _plot(rows, "loss", "Loss per epoch", "cross-entropy loss", out_dir / "loss.png")
    acc = _plot(rows, "acc", "Accuracy per epoch", "accuracy", out_dir / "acc.png")
    return loss, acc


def write_metrics_report(log_dir: str | os.PathLike) -> dict[str, Path]:
    """Table and plots from ``<log_dir>/metrics.csv``, written into ``log_dir``.

    Returns the paths under the keys ``csv``, ``markdown``, ``loss`` and ``acc``.
    """
    log_dir = Path(log_dir)
    rows = epoch_table(log_dir / "metrics.csv")
    if not rows:
        raise ValueError(f"{log_dir / 'metrics.csv'}: no per-epoch train/val metrics; train an epoch first")
    csv_path, md_path = write_table(rows, log_dir)
    loss_path, acc_path = plot_curves(rows, log_dir)
    return {"csv": csv_path, "markdown": md_path, "loss": loss_path, "acc": acc_path}


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _plot(rows: Sequence[dict], metric: str, title: str, ylabel: str, target: Path) -> Path:
    # A bare Figure renders with the Agg canvas: headless, and the global pyplot backend is left alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6.4, 4.2), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    for split, style in (("train", "o-"), ("val", "s--")):
        key = f"{split}_{metric}"
        points = [(row["epoch"], row[key]) for row in rows if row.get(key) is not None]
        if points:
            epochs, values = zip(*points, strict=True)
            axes.plot(epochs, values, style, label=key, markersize=4)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target
