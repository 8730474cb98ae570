"""``litquant serve``'s options: its help, ``--print_config`` taken back by ``--config``, one line for a bad
option; nothing is loaded or served. (The server itself: ``tests/serve/test_server.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from litquant.cli import main


def test_serve_help(capsys) -> None:
    assert main(["serve", "--help"]) == 0
    printed = capsys.readouterr().out
    assert "--max_batch_size" in printed and "--config" in printed and "--runner" in printed


def test_serve_print_config_is_accepted_back_by_config(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["serve", "demo/ptq.pt2", "fp32=demo/fp32.pt2", "--port", "8123", "--runner", "aot", "--print_config"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["models"] == ["demo/ptq.pt2", "fp32=demo/fp32.pt2"]
    assert config["port"] == 8123 and config["runner"] == "aot" and config["host"] == "127.0.0.1"
    (tmp_path / "serve.yaml").write_text(printed)
    assert main(["serve", "--config=serve.yaml", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == config


@pytest.mark.parametrize(("args", "message"), [(["--port", "80"], "--port 80: choose a port from 1024"),
                                               (["--runner", "fast"], "unknown --runner 'fast': choose one of")])
def test_serve_bad_option_is_one_line(args: list[str], message: str, capsys) -> None:
    assert main(["serve", "missing.pt2", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
