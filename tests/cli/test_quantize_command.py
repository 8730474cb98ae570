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


def test_quantize_writes_the_configuration_it_ran_with(tiny_checkpoint: Path, tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    """``quantize --out DIR`` leaves ``<artifact stem>.quantize_config.yaml`` beside the artifact: the resolved
    configuration (the checkpoint's data settings included), naming the artifact it belongs to; ``--config``
    takes it back and redoes the run; a later run that fails leaves the earlier file, still true."""
    from litquant.artifacts.files import file_sha256
    from litquant.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["quantize", f"--ckpt_path={tiny_checkpoint}", "--method=ptq", "--out=q", "--quant.calibration_batches=1",
            "--quant.accuracy_batches=0", "--quant.observer=minmax"]
    assert main(args) == 0
    saved = tmp_path / "q" / "ptq.quantize_config.yaml"
    assert f"configuration: {Path('q/ptq.quantize_config.yaml')}" in capsys.readouterr().out
    text = saved.read_text()
    assert text.splitlines()[0].startswith(f"# litquant quantize: the run that wrote ptq.pt2 (sha256 "
                                           f"{file_sha256(tmp_path / 'q' / 'ptq.pt2')})")
    config = yaml.safe_load(text)
    assert config["method"] == "ptq" and config["out"] == "q" and config["quant"]["observer"] == "minmax"
    assert config["data"]["train_size"] == 1024, "the data settings taken from the checkpoint are written out"

    # the file is the command: --print_config of it prints it again, and running it redoes the run
    assert main(["quantize", f"--config={saved}", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == config
    (tmp_path / "q" / "ptq.pt2").unlink()
    assert main(["quantize", f"--config={saved}"]) == 0
    assert yaml.safe_load(saved.read_text()) == config
    assert file_sha256(tmp_path / "q" / "ptq.pt2") in saved.read_text().splitlines()[0]

    # a second run into the same folder that fails half-way leaves the first run's file and artifact together
    before = saved.read_bytes()
    assert main([*args, "--quant.fp32_layers=[no_such_layer]"]) == 2
    assert "no_such_layer" in capsys.readouterr().err
    assert saved.read_bytes() == before
    assert file_sha256(tmp_path / "q" / "ptq.pt2") in before.decode().splitlines()[0]
    assert not list((tmp_path / "q").glob(".*.tmp*")), "no temporary file left behind"
