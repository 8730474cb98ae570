r"""
Metrics report
==============

Writes the per-epoch metrics table and the loss/accuracy plots when a fit ends (or crashes).
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_warn
from typing_extensions import override

from litquant.callbacks.metrics_tables import write_metrics_report

__all__ = ["MetricsReport"]


class MetricsReport(Callback):
    r"""Turn the ``CSVLogger``'s ``metrics.csv`` into ``metrics_table.csv``, ``metrics_table.md``,
    ``loss.png`` and ``acc.png`` in the logger's folder at the end of ``fit``.

    The report is also written when the fit stops on an exception (if any epoch was logged), so a crash or a
    ``Ctrl+C`` does not lose it. It runs on global rank zero only. Without a ``CSVLogger`` it warns once and
    does nothing.

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
        if not trainer.is_global_zero:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if logger is None:
            rank_zero_warn("MetricsReport: the Trainer has no CSVLogger, so no metrics table or plots")
            return
        logger.save()
        log_dir = Path(logger.log_dir)
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
