"""Catalogs of Lightning's callbacks and loggers: complete, one-line summaries, arguments, backends."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import lightning.pytorch.callbacks as lightning_callbacks
import lightning.pytorch.loggers as lightning_loggers
import pytest

from litquant import catalog
from litquant.catalog import callback_catalog, format_catalog, logger_catalog


@pytest.fixture(scope="module")
def callbacks() -> list[dict]:
    return callback_catalog()


@pytest.fixture(scope="module")
def loggers() -> list[dict]:
    return logger_catalog()


def _by_name(entries: list[dict]) -> dict[str, dict]:
    return {entry["name"]: entry for entry in entries}


def test_every_exported_class_is_listed_once_in_order(callbacks, loggers):
    assert [entry["name"] for entry in callbacks] == list(lightning_callbacks.__all__)
    assert [entry["name"] for entry in loggers] == list(lightning_loggers.__all__)


@pytest.mark.parametrize("kind", ["callbacks", "loggers"])
def test_entries_are_clean_one_liners(kind, callbacks, loggers):
    for entry in callbacks if kind == "callbacks" else loggers:
        summary = entry["summary"]
        assert summary and "\n" not in summary and summary != "(no description)", entry["name"]
        assert ":class:" not in summary and "``" not in summary and "<http" not in summary, summary
        assert all(isinstance(argument, str) and "\n" not in argument for argument in entry["arguments"])
        assert all(len(argument) < 80 for argument in entry["arguments"]), entry["arguments"]


def test_callback_details(callbacks):
    entries = _by_name(callbacks)
    early = entries["EarlyStopping"]
    assert early["summary"] == "Monitor a metric and stop training when it stops improving."
    assert early["arguments"][:3] == ["monitor", "min_delta=0.0", "patience=3"]
    assert "mode='min'" in early["arguments"]
    assert "monitor=None" in entries["ModelCheckpoint"]["arguments"]
    assert entries["ModelCheckpoint"]["summary"].startswith("Save the model")
    # classes without their own docstring are described by their __init__, not by Callback's docstring
    assert entries["ModelPruning"]["summary"].startswith("Model pruning Callback")
    assert "Stochastic Weight Averaging" in entries["StochasticWeightAveraging"]["summary"]
    assert entries["Timer"]["arguments"] == ["duration=None", "interval='step'", "verbose=True"]
    assert entries["BackboneFinetuning"]["arguments"][1] == "lambda_func=multiplicative"
    bases = {name for name, entry in entries.items() if entry["note"]}
    assert {"Callback", "Checkpoint", "BaseFinetuning", "BasePredictionWriter", "ProgressBar"} <= bases
    assert not bases & {"ModelSummary", "ModelCheckpoint", "EarlyStopping", "WeightAveraging"}
    rich = entries["RichProgressBar"]
    assert rich["requires"] == "rich" and rich["installed"] == (importlib.util.find_spec("rich") is not None)


def test_logger_backends_and_installed_flags(loggers):
    entries = _by_name(loggers)
    assert entries["CSVLogger"]["backend"] is None and entries["CSVLogger"]["installed"]
    assert entries["Logger"]["note"].startswith("base class")
    assert entries["TensorBoardLogger"]["backend"] == "tensorboard or tensorboardX"
    expected = {"WandbLogger": "wandb", "MLFlowLogger": "mlflow", "CometLogger": "comet_ml", "LitLogger": "litlogger"}
    for name, backend in expected.items():
        if name in entries:
            assert entries[name]["backend"] == backend
    for entry in loggers:
        if entry["backend"]:
            packages = entry["backend"].split(" or ")
            installed = any(importlib.util.find_spec(package) is not None for package in packages)
            assert entry["installed"] == installed, entry["name"]
            assert (entry["install"] == "") == installed, entry
    assert "save_dir" in entries["CSVLogger"]["arguments"]
    assert entries["CometLogger"]["arguments"][0] == "*"  # keyword-only arguments follow


def test_installed_backend_is_found_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "wandb"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the catalog must not import backends')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    wandb = _by_name(logger_catalog())["WandbLogger"]
    assert wandb["installed"] and wandb["install"] == ""
    assert "wandb" not in sys.modules


def test_unknown_logger_backend_is_read_from_its_module(monkeypatch):
    monkeypatch.delitem(catalog._LOGGER_BACKENDS, "CometLogger")
    comet = _by_name(logger_catalog())["CometLogger"]
    assert comet["backend"] == "comet_ml"


def test_text_format_is_an_aligned_wrapped_table(callbacks, loggers):
    text = format_catalog(callbacks, width=100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    starts = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert starts == [entry["name"] for entry in callbacks]
    column = len(max(starts, key=len)) + 2
    continued = [line for line in lines if line.startswith(" ")]
    assert continued and all(line[:column].isspace() and line[column:].strip() for line in continued)
    assert "args: monitor, min_delta=0.0, patience=3" in text
    assert "more)" in text  # LambdaCallback's long list is cut in the text view
    logger_text = format_catalog(loggers, width=100)
    assert "CSVLogger" in logger_text
    for entry in loggers:
        if entry["backend"] and not entry["installed"]:
            assert f"{entry['backend']}: not installed ({entry['install']})" in logger_text


def test_json_and_markdown_formats(callbacks, loggers):
    assert json.loads(format_catalog(loggers, "json")) == loggers
    markdown = format_catalog(callbacks, "markdown").splitlines()
    assert markdown[0] == "| name | summary | arguments | requires | installed |"
    assert len(markdown) == 2 + len(callbacks)
    assert all(line.startswith("| `") and line.endswith(" |") for line in markdown[2:])
    assert format_catalog(loggers, "markdown").splitlines()[0].startswith("| name | summary | arguments | backend")
    with pytest.raises(ValueError, match="unknown catalog format 'yaml'"):
        format_catalog(loggers, "yaml")
