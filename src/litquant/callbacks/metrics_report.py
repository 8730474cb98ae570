r"""
Metrics report
==============

Writes the per-epoch metrics table and the loss/accuracy plots when a fit ends (or crashes).
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_warn
from typing_extensions import override

from litquant.callbacks.metrics_tables import write_metrics_report
from litquant.files import write_text

__all__ = ["MetricsReport"]


class _LoggedRows(Logger):
    """What the Trainer logs, kept in memory: the report's ``metrics.csv`` beside a logger that writes none."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []

    @property
    def name(self) -> None:
        return None

    @property
    def version(self) -> None:
        return None

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.rows.append({"step": step, **{key: float(value) for key, value in metrics.items()}})

    def write_csv(self, path: Path) -> Path:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        lines = [",".join(columns)]
        lines += [",".join("" if row.get(c) is None else repr(row[c]) for c in columns) for row in self.rows]
        return write_text(path, "\n".join(lines) + "\n")


def _run_folder(logger: Logger, trainer: L.Trainer) -> Path:
    """The run's folder of ``logger``, where Lightning puts its ``checkpoints/``: its ``log_dir``, else
    ``<save_dir>/<name>/<version>``."""
    if getattr(logger, "log_dir", None):
        return Path(logger.log_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version


class MetricsReport(Callback):
    r"""Turn the ``CSVLogger``'s ``metrics.csv`` into ``metrics_table.csv``, ``metrics_table.md``,
    ``loss.png`` and ``acc.png`` in the logger's folder at the end of ``fit``.

    The report is also written when the fit stops on an exception (if any epoch was logged), so a crash or a
    ``Ctrl+C`` does not lose it. A ``fast_dev_run``, whose logging Lightning suppresses, gets none. It runs on
    global rank zero only. Without a ``CSVLogger`` it warns once and does nothing. Beside any other logger
    (TensorBoard, MLflow, ...), it keeps the logged metrics itself and writes them as ``metrics.csv`` with the
    table and plots into that logger's run folder.

    Args:
        verbose: print one line with the written paths.

    Example::

        >>> import lightning.pytorch as L
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> from litquant.callbacks import MetricsReport
        >>> trainer = L.Trainer(max_epochs=2, logger=CSVLogger("logs"), callbacks=[MetricsReport()])
        >>> # trainer.fit(model, datamodule=dm) writes logs/lightning_logs/version_0/metrics_table.md, ...
    """

    def __init__(self, verbose: bool = True) -> None:
        self.verbose = verbose
        self.paths: dict[str, Path] = {}
        self._rows: _LoggedRows | None = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.fast_dev_run:
            return
        if stage == "fit" and trainer.loggers and not any(isinstance(lg, CSVLogger) for lg in trainer.loggers):
            self._rows = _LoggedRows()
            trainer.loggers.append(self._rows)  # last, so that the run folder stays the first logger's

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._rows is not None and self._rows in trainer.loggers:
            trainer.loggers.remove(self._rows)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, failed=False)

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if trainer.state.fn == "fit":
            self._report(trainer, failed=True)

    def _report(self, trainer: L.Trainer, failed: bool) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if logger is not None:
            logger.save()
            log_dir = Path(logger.log_dir)
        elif self._rows is not None and self._rows.rows:
            log_dir = _run_folder(trainer.loggers[0], trainer)
            self._rows.write_csv(log_dir / "metrics.csv")
        elif self._rows is not None:
            return  # nothing logged yet
        else:
            rank_zero_warn("MetricsReport: the Trainer has no logger, so no metrics table or plots")
            return
        if failed and not (log_dir / "metrics.csv").is_file():
            return
        try:
            self.paths = write_metrics_report(log_dir)
        except (OSError, ValueError) as err:
            if not failed:
                rank_zero_warn(f"MetricsReport: no report written: {err}")
            return
        if self.verbose:
            names = ", ".join(path.name for path in self.paths.values())
            print(f"Metrics report{' (fit failed)' if failed else ''}: {log_dir}/{{{names}}}")
