"""``--data.*``: the data options (:class:`~litquant.data.settings.DataSettings`, which
:class:`~litquant.data.MNISTDataModule` takes) for the commands outside LightningCLI, and the data settings a
checkpoint or artifact saved, used where the user gave none. Importing this module, and parsing, import no torch
and no Lightning: only :func:`make_datamodule` does."""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser

from litquant.cli.options import command_parser, given_options
from litquant.data.formats import DATASETS
from litquant.data.settings import SAVED_DATA_KEYS, DataSettings
from litquant.data.sources import find_local
from litquant.errors import UserError
from litquant.saved_data import carries_data_settings, model_kind, saved_data_settings


def data_command_parser(prog: str, description: str) -> ArgumentParser:
    """:func:`~litquant.cli.options.command_parser` with the ``--data.*`` options."""
    parser = command_parser(prog, description)
    parser.add_class_arguments(DataSettings, "data")
    return parser


def data_settings_from_options(config) -> DataSettings:
    """The :class:`~litquant.data.settings.DataSettings` of parsed ``--data.*`` options."""
    return DataSettings(**config.data.as_dict())


def make_datamodule(config):
    """The :class:`~litquant.data.MNISTDataModule` of parsed ``--data.*`` options (imports Lightning)."""
    from litquant.data import MNISTDataModule

    return MNISTDataModule(**config.data.as_dict())


def use_checkpoint_data(parser: ArgumentParser, config, ckpt_path: str, given, prefix: str | None = None,
                        announce: bool = True):
    """``config`` with the ``--data.*`` options ``given`` leaves out taken from the data settings saved in the
    checkpoint or artifact ``ckpt_path`` (:func:`~litquant.saved_data.saved_data_settings`), checked by
    ``parser``. A saved ``data_dir`` chooses which data to read, never where to write: with it, downloading is
    off. With ``announce``, one line says which data the command uses, and a saved ``data_dir`` that does not
    hold the data is an error naming it.

    Raises:
        UserError: with ``announce``, the saved ``data_dir`` does not hold the data."""
    saved = saved_data_settings(ckpt_path)
    kind = model_kind(ckpt_path)
    taken = {key: saved[key] for key in SAVED_DATA_KEYS if key in saved and key not in given}
    if taken.get("data_dir"):
        taken["download"] = False
    if taken:
        config = parser.parse_object({prefix: {"data": taken}} if prefix else {"data": taken}, config)
    if announce:
        data = (config[prefix] if prefix else config).data
        folder = Path(taken["data_dir"]).expanduser() if taken.get("data_dir") else None
        spec = DATASETS.get(data.dataset)
        if folder is not None and spec is not None and (not folder.is_dir() or find_local(spec, folder) is None):
            what = f"does not hold the {spec.name} files" if folder.is_dir() else "is not a folder"
            raise UserError(f"{ckpt_path} was made from {spec.name} in {taken['data_dir']}, which {what} here "
                            f"(a {kind}'s data folder is only read, never downloaded into): pass --data.data_dir "
                            "DIR, the folder that holds them now or one to download them into")
        overridden = [f"--data.{key}" for key in SAVED_DATA_KEYS if key in saved and key in given]
        origin = (f"as saved in the {kind}" + (f", {', '.join(overridden)} from the command line"
                                                if overridden else "")
                  if saved else f"from the --data options (the {kind} saved no data settings)")
        print(f"data: {describe_data(data)}, {origin}", flush=True)
    return config


def describe_data(data) -> str:
    """``mnist from ~/data (train 55000 / val 5000 / test 10000, seed 42)`` for the ``--data.*`` options
    ``data`` (the sizes asked for; the offline fallback says itself when it has fewer)."""
    spec = DATASETS[data.dataset]
    train_total = spec.files["train-images-idx3-ubyte"].shape[0]
    test_total = spec.files["t10k-images-idx3-ubyte"].shape[0]
    train = train_total - data.val_size
    train = min(train, data.train_size) if data.train_size else train
    test = min(test_total, data.test_size) if data.test_size else test_total
    where = data.data_dir or "the default data folder ($LITQUANT_DATA or ~/.cache/litquant)"
    return f"{spec.name} from {where} (train {train} / val {data.val_size} / test {test}, seed {data.seed})"


def parse_data_command(parser: ArgumentParser, argv: list[str], ckpt_key: str = "ckpt_path",
                       announce: bool = True):
    """``parser.parse_args(argv)``, the ``--data.*`` options the user left out taken from the checkpoint or
    artifact named by option ``ckpt_key``: see :func:`use_checkpoint_data`. ``--ckpt_path last`` is the newest
    fit run's ``last.ckpt`` (:func:`~litquant.checkpoints.checkpoint_argument`)."""
    config = parser.parse_args(argv)
    if ckpt_key == "ckpt_path" and config.get(ckpt_key) == "last":
        from litquant.checkpoints import checkpoint_argument

        config[ckpt_key] = checkpoint_argument("last")
    ckpt_path = config.get(ckpt_key)
    if carries_data_settings(ckpt_path):
        given = given_options(parser, argv).get("data") or {}
        config = use_checkpoint_data(parser, config, ckpt_path, given, announce=announce)
    return config
