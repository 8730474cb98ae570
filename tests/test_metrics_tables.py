"""Per-epoch table and plots from a CSVLogger's metrics.csv, and the MetricsReport callback on real fits."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pytest
from helpers import run_python
from lightning.pytorch.loggers import CSVLogger
from PIL import Image

from litquant.callbacks import MetricsReport
from litquant.callbacks.metrics_tables import COLUMNS, epoch_table, plot_curves, write_metrics_report, write_table
from litquant.model import MNISTClassifier

# As CSVLogger writes it: validation and training of one epoch on separate rows, a learning-rate row without
# an epoch, an epoch without validation, an epoch logged twice by a resumed run, and a test run after fit.
METRICS_CSV = """\
epoch,lr-AdamW,step,test_acc,test_loss,train_acc,train_loss,val_acc,val_loss
,0.001,0,,,,,,
0,,49,,,,,0.90,0.35
0,,49,,,0.80,0.70,,
1,,99,,,,,0.93,0.25
1,,99,,,0.91,0.30,,
2,,149,,,0.94,0.20,,
2,,149,,,0.95,0.18,,
2,,149,,,,,0.96,0.12
3,,150,0.97,0.10,,,,
"""
EXPECTED = [
    {"epoch": 0, "train_loss": 0.70, "val_loss": 0.35, "train_acc": 0.80, "val_acc": 0.90},
    {"epoch": 1, "train_loss": 0.30, "val_loss": 0.25, "train_acc": 0.91, "val_acc": 0.93},
    {"epoch": 2, "train_loss": 0.18, "val_loss": 0.12, "train_acc": 0.95, "val_acc": 0.96},
]
TRAIN_BLUE, VAL_ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two colours


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    return tmp_path


def test_epoch_table_merges_rows_per_epoch(log_dir):
    assert epoch_table(log_dir / "metrics.csv") == EXPECTED


def test_epoch_table_missing_values_and_epoch_suffix(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss_epoch,train_loss_step,val_loss\n0,9,0.5,0.4,\n1,19,0.3,0.2,0.25\n")
    rows = epoch_table(path)
    assert rows == [
        {"epoch": 0, "train_loss": 0.5, "val_loss": None, "train_acc": None, "val_acc": None},
        {"epoch": 1, "train_loss": 0.3, "val_loss": 0.25, "train_acc": None, "val_acc": None},
    ]
    csv_path, md_path = write_table(rows, tmp_path)
    assert "| 0 | 0.500000 | - | - | - |" in md_path.read_text()
    assert csv_path.read_text().splitlines()[1] == "0,0.5,,,"


def test_missing_or_empty_metrics_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such metrics file"):
        epoch_table(tmp_path / "metrics.csv")
    with pytest.raises(FileNotFoundError):
        write_metrics_report(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,step,test_acc\n0,5,0.9\n")
    with pytest.raises(ValueError, match="no per-epoch train/val metrics"):
        write_metrics_report(tmp_path)


def test_write_table_csv_and_markdown(log_dir):
    csv_path, md_path = write_table(EXPECTED, log_dir / "report")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert [{k: float(v) for k, v in row.items()} for row in rows] == EXPECTED
    lines = md_path.read_text().splitlines()
    assert lines[0] == "| epoch | train_loss | val_loss | train_acc | val_acc |"
    assert lines[2] == "| 0 | 0.700000 | 0.350000 | 0.800000 | 0.900000 |"
    assert len(lines) == 2 + len(EXPECTED)
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["metrics_table.csv", "metrics_table.md"]


def _colour_pixels(path: Path, colour: tuple[int, int, int]) -> int:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(pixels - colour).sum(axis=-1) < 30).sum())


def test_plots_are_pngs_with_both_curves(log_dir):
    loss, acc = plot_curves(EXPECTED, log_dir)
    assert (loss.name, acc.name) == ("loss.png", "acc.png")
    for path in (loss, acc):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(path).size[0] >= 600
        assert _colour_pixels(path, TRAIN_BLUE) > 100 and _colour_pixels(path, VAL_ORANGE) > 100
    assert not [p for p in log_dir.iterdir() if p.name.startswith(".")], "temporary files left behind"
    train_only = [{**row, "val_loss": None, "val_acc": None} for row in EXPECTED]
    loss, _ = plot_curves(train_only, log_dir / "train_only")
    assert _colour_pixels(loss, TRAIN_BLUE) > 100 and _colour_pixels(loss, VAL_ORANGE) == 0


def test_report_is_drawn_headless_without_touching_pyplot(log_dir):
    code = (
        "import sys; from litquant.callbacks.metrics_tables import write_metrics_report; "
        f"paths = write_metrics_report({str(log_dir)!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'; "
        "print(sorted(p.name for p in paths.values()))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    env["MPLBACKEND"] = "TkAgg"  # a GUI default must not matter: nothing is shown
    result = run_python("-c", code, env=env, timeout=120)
    assert result.stdout.strip() == "['acc.png', 'loss.png', 'metrics_table.csv', 'metrics_table.md']"


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = dict(
        max_epochs=2, limit_train_batches=2, limit_val_batches=2, logger=CSVLogger(tmp_path),
        callbacks=[MetricsReport()], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return L.Trainer(**options)


def test_metrics_report_after_a_real_fit(tmp_path, make_datamodule, capsys):
    trainer = _trainer(tmp_path)
    trainer.fit(MNISTClassifier(), datamodule=make_datamodule(train_size=256, val_size=256))
    log_dir = Path(trainer.logger.log_dir)
    names = {"metrics_table.csv", "metrics_table.md", "loss.png", "acc.png"}
    assert names <= {p.name for p in log_dir.iterdir()}
    rows = epoch_table(log_dir / "metrics.csv")
    assert [row["epoch"] for row in rows] == [0, 1]
    assert all(value is not None for row in rows for value in row.values())
    assert len((log_dir / "metrics_table.md").read_text().splitlines()) == 2 + 2
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Metrics report")]
    assert len(printed) == 1 and str(log_dir) in printed[0] and "loss.png" in printed[0]


class _CrashInSecondEpoch(MNISTClassifier):
    def training_step(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise RuntimeError("simulated crash")
        return super().training_step(batch, batch_idx)


def test_metrics_report_survives_a_crash(tmp_path, make_datamodule):
    trainer = _trainer(tmp_path, max_epochs=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.fit(_CrashInSecondEpoch(), datamodule=make_datamodule(train_size=256, val_size=256))
    log_dir = Path(trainer.logger.log_dir)
    assert (log_dir / "loss.png").is_file() and (log_dir / "acc.png").is_file()
    assert [row["epoch"] for row in epoch_table(log_dir / "metrics.csv")] == [0]
    assert "| 0 |" in (log_dir / "metrics_table.md").read_text()


def test_metrics_report_without_a_logger_warns(tmp_path):
    trainer = _trainer(tmp_path, logger=False, default_root_dir=tmp_path)
    callback = next(cb for cb in trainer.callbacks if isinstance(cb, MetricsReport))
    with pytest.warns(UserWarning, match="no logger"):
        callback.on_fit_end(trainer, MNISTClassifier())
    assert callback.paths == {}
    assert not list(tmp_path.rglob("*.png"))
