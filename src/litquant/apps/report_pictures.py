"""The pictures of the demo's report: every model's size, latency and test accuracy in one plot, and the section
of ``report.md`` that shows it beside the fit's loss and accuracy curves and the test's confusion matrix.

Example::

    from litquant.apps.report_pictures import pictures_section, plot_models

    plot_models(json.load(open("demo/report.json")), "demo/models.png")
    print(pictures_section(Path("demo"), Path("demo/mnist/version_0")))
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litquant.apps.report import label
from litquant.files import atomic_path

__all__ = ["MODELS_PLOT", "pictures_section", "plot_models"]

#: The file name of :func:`plot_models`' picture in the demo's folder.
MODELS_PLOT = "models.png"


def plot_models(rows: Sequence[dict[str, Any]], target: str | os.PathLike) -> Path | None:
    """Every model of the report's ``rows`` as one point: latency at batch 1 (x, log scale) against test
    accuracy (y), its area the file's size, labelled with its name and size; headless. ``None`` (nothing
    written) when no row has both a latency and an accuracy."""
    from matplotlib.figure import Figure

    points = [row for row in rows if row.get("latency_ms_b1") and row.get("test_acc") is not None]
    if not points:
        return None
    figure = Figure(figsize=(7.5, 4.8), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    largest = max(row.get("size_bytes") or 1 for row in points)
    for row in points:
        size_mb = (row.get("size_bytes") or 0) / 1e6
        axes.scatter(row["latency_ms_b1"], row["test_acc"], s=60 + 900 * (row.get("size_bytes") or 0) / largest,
                     alpha=0.6)
        axes.annotate(f"{label(row['method'])}\n{size_mb:.2f} MB", (row["latency_ms_b1"], row["test_acc"]),
                      textcoords="offset points", xytext=(8, 6), fontsize=7)
    axes.set_xscale("log")
    axes.set_xlabel("latency at batch 1 (ms, log scale)")
    axes.set_ylabel("test accuracy")
    axes.set_title("Every model: latency, test accuracy and size (the area)")
    axes.grid(True, alpha=0.3)
    accuracies = [row["test_acc"] for row in points]
    margin = max(0.002, (max(accuracies) - min(accuracies)) * 0.3)
    axes.set_ylim(min(accuracies) - margin, min(1.0, max(accuracies) + margin))
    target = Path(target)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target


def _per_class_table(path: Path) -> list[str]:
    """``per_class_accuracy.csv`` as a two-row Markdown table (class, accuracy); empty when it is missing."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return ["| Class | " + " | ".join(row["class"] for row in rows) + " |",
            "| --- |" + " --: |" * len(rows),
            "| Accuracy | " + " | ".join(row["accuracy"] or "–" for row in rows) + " |"]


def pictures_section(out: Path, run_folder: Path | None) -> str:
    """``report.md``'s section of pictures, linked relative to ``out``: the fit's ``loss.png`` and ``acc.png``
    and the test's ``confusion_matrix.png`` with the per-class accuracy (from ``run_folder``, where they are),
    and :data:`MODELS_PLOT`; each only where its file exists."""
    def link(path: Path) -> str:
        return Path(os.path.relpath(path, out)).as_posix()

    lines = ["", "## Pictures", ""]
    if run_folder is not None:
        curves = [run_folder / name for name in ("loss.png", "acc.png") if (run_folder / name).is_file()]
        if curves:
            lines += ["Loss and accuracy per epoch of the fit:", "",
                      " ".join(f"![{path.stem} per epoch]({link(path)})" for path in curves), ""]
        confusion = run_folder / "confusion_matrix.png"
        if confusion.is_file():
            per_class = run_folder / "per_class_accuracy.csv"
            lines += ["The best checkpoint's confusion matrix on the test split (rows: true class, columns: "
                      f"predicted; the counts in `{link(run_folder / 'confusion_matrix.csv')}`) and the accuracy "
                      "of each class:", "", f"![confusion matrix]({link(confusion)})", "",
                      *_per_class_table(per_class), ""]
    if (out / MODELS_PLOT).is_file():
        lines += ["Every model's latency at batch 1, test accuracy and size (the area of its point):", "",
                  f"![size, latency and accuracy of every model]({MODELS_PLOT})", ""]
    return "\n".join(lines) if len(lines) > 3 else ""
