"""Save ``interrupted.ckpt`` when a running fit stops on an exception, Ctrl-C (SIGINT) or SIGTERM.

Lightning turns SIGTERM into an exception inside the training loop and Ctrl-C into ``KeyboardInterrupt``; both
reach ``on_exception``. The file is written only once this fit has started a training batch: a fit that fails
before training (bad options, data that cannot be loaded, a checkpoint that does not fit) holds no progress
worth resuming, so it leaves nothing behind.

Unlike Lightning's ``OnExceptionCheckpoint`` this is a plain callback, so its presence never makes
``trainer.fit(ckpt_path=None)`` resume from ``"last"``: a fit resumes only when asked to.

Example::

    trainer = Trainer(callbacks=[ModelCheckpoint(save_last=True), InterruptedCheckpoint()])
    trainer.fit(model, datamodule=dm)  # Ctrl-C here leaves interrupted.ckpt beside the ModelCheckpoint's files
    trainer.fit(model, datamodule=dm, ckpt_path="runs/mnist/version_0/checkpoints/interrupted.ckpt")
"""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class InterruptedCheckpoint(Callback):
    """Save ``<dirpath>/<filename>.ckpt`` when a fit that has started training stops on an exception.

    Args:
        dirpath: folder of the checkpoint file; ``None``: the folder of the Trainer's first
            ``ModelCheckpoint`` (the run's own checkpoint folder), else ``<default_root_dir>/checkpoints``.
        filename: its name without the extension.
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike | None = None, filename: str = "interrupted") -> None:
        if not filename:
            raise ValueError("the filename cannot be empty")
        self.dirpath = dirpath
        self.filename = filename
        self._training_started = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training_started = False

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._training_started = True

    def checkpoint_path(self, trainer: L.Trainer) -> str:
        """Where the file goes for ``trainer``."""
        dirpath = self.dirpath
        if dirpath is None:
            dirpath = next((cb.dirpath for cb in trainer.checkpoint_callbacks
                            if isinstance(cb, ModelCheckpoint) and cb.dirpath), None)
        if dirpath is None:
            dirpath = os.path.join(trainer.default_root_dir, "checkpoints")
        return os.path.join(dirpath, self.filename + self.FILE_EXTENSION)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._training_started:
            trainer.save_checkpoint(self.checkpoint_path(trainer))
