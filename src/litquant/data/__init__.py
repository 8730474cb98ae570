"""The data: MNIST or Fashion-MNIST, found, checked and served in memory to a Lightning ``Trainer``.

Four modules, each importing only the ones before it:

- :mod:`litquant.data.formats`: the IDX format, what each dataset's files hold, content checks;
- :mod:`litquant.data.sources`: finding the files locally, the verified download, the offline fallback;
- :mod:`litquant.data.settings`: the data options (:class:`DataSettings`) and those a trained model carries;
- :mod:`litquant.data.module`: the ``LightningDataModule`` (splits, loaders, normalisation, batches).

Example::

    from litquant.data import MNISTDataModule
    dm = MNISTDataModule(data_dir="~/data", train_size=1000, batch_size=64)
    dm.prepare_data()          # finds, downloads or falls back (see ``litquant.data.sources``)
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))   # uint8 [64, 1, 28, 28], int64 [64]
"""

from typing import TYPE_CHECKING, Any

from litquant.data.formats import DATASETS, SPLIT_FILES, DataError, DatasetSpec, IdxFile, read_idx
from litquant.data.settings import DataSettings
from litquant.data.sources import DownloadError, default_data_dir, locate_dataset

if TYPE_CHECKING:
    from litquant.data.module import (
        EpochShuffleSampler,
        InMemoryImages,
        MNISTDataModule,
        data_settings_from_checkpoint,
        normalize,
        random_shift,
    )

#: The names of :mod:`litquant.data.module`, imported on first use: it imports Lightning and PyTorch, which the
#: formats, sources and settings (what reading an artifact's description needs) do not.
_MODULE_NAMES = frozenset({"EpochShuffleSampler", "InMemoryImages", "MNISTDataModule", "data_settings_from_checkpoint",
                           "normalize", "random_shift"})

__all__ = [
    "DATASETS",
    "SPLIT_FILES",
    "DataError",
    "DataSettings",
    "DatasetSpec",
    "DownloadError",
    "EpochShuffleSampler",
    "IdxFile",
    "InMemoryImages",
    "MNISTDataModule",
    "data_settings_from_checkpoint",
    "default_data_dir",
    "locate_dataset",
    "normalize",
    "random_shift",
    "read_idx",
]


def __getattr__(name: str) -> Any:
    if name in _MODULE_NAMES:
        from litquant.data import module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
