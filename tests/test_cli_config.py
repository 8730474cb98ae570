"""``litquant quantize`` and ``litquant demo`` print their whole configuration with ``--print_config``, and
``--config`` takes that file back: the same configuration again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.mark.parametrize("command", [
    ["quantize", "--ckpt_path=model.ckpt", "--method=qat", "--quant.qat_max_steps=7", "--quant.observer=percentile",
     "--calibration_batches=5"],  # the flag quantize took before --quant.*, still accepted
    ["demo", "--out=here", "--methods=ptq,onnxruntime", "--quant.per_channel=false", "--trainer.max_epochs=1"],
])
def test_print_config_is_accepted_back_by_config(command: list[str], tmp_path: Path, capsys, monkeypatch) -> None:
    from litquant.cli import main

    monkeypatch.chdir(tmp_path)
    assert main([*command, "--print_config"]) == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["quant"]["per_channel"] is (command[0] != "demo")
    if command[0] == "quantize":
        assert config["method"] == "qat" and config["quant"]["qat_max_steps"] == 7
        assert config["quant"]["observer"] == "percentile" and config["quant"]["calibration_batches"] == 5
    else:
        assert config["out"] == "here" and config["methods"] == "ptq,onnxruntime"
        assert config["trainer"]["max_epochs"] == 1 and config["data"]["train_size"] == 10000
    (tmp_path / "config.yaml").write_text(printed)
    assert main([command[0], "--config=config.yaml", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == config
    assert not list(tmp_path.glob("*/")), "printing the configuration does no work"


def test_info_choices_are_typed(capsys) -> None:
    from litquant.cli import main

    assert main(["info", "plugins"]) == 2
    assert "unknown --what 'plugins': choose one of callbacks, loggers" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["maybe", "AUTO", ""])
def test_reduce_range_error_names_every_choice(capsys, value: str) -> None:
    from litquant.cli import main

    assert main(["quantize", "--method=ptq", "--ckpt_path=a.ckpt", f"--quant.reduce_range={value}"]) == 2
    err = capsys.readouterr().err
    assert f"unknown --quant.reduce_range {value!r}: choose one of auto, true, false\n" in err
    assert err.count("error:") == 1 and "Subtypes" not in err and "Traceback" not in err
