"""Save ``interrupted.ckpt`` when a fit stops on an exception, Ctrl-C (SIGINT) or SIGTERM.

Lightning turns SIGTERM into an exception inside the training loop and Ctrl-C into ``KeyboardInterrupt``; both
reach ``on_exception``. Unlike ``OnExceptionCheckpoint``, nothing is saved when the fit fails before training
began (bad options, a checkpoint that does not fit): such a file would hold no progress and be picked up by the
next ``--ckpt_path last``.

Example::

    trainer = Trainer(callbacks=[InterruptedCheckpoint("runs/checkpoints")])
    trainer.fit(model, datamodule=dm)        # Ctrl-C here leaves runs/checkpoints/interrupted.ckpt
    trainer.fit(model, datamodule=dm, ckpt_path="last")   # resumes from the newer of it and last.ckpt
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class InterruptedCheckpoint(OnExceptionCheckpoint):
    """``OnExceptionCheckpoint`` that only saves once the fit loop is running.

    Args:
        dirpath: folder of the checkpoint file.
        filename: its name without the extension.
    """

    def __init__(self, dirpath: str, filename: str = "interrupted") -> None:
        super().__init__(dirpath=dirpath, filename=filename)

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.state.fn == TrainerFn.FITTING and trainer.state.stage is not None:
            super().on_exception(trainer, *args, **kwargs)
