"""``litquant bench``'s options: one line for each bad input (before any model loads), its help, and
``--print_config`` taken back by ``--config``. (What it measures: ``tests/test_bench.py``.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from litquant.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "message"), [
    (["missing.pt2"], "not found: missing.pt2"),
    (["{onnx}", "--threads", "0"], "must be positive"),
    (["{ckpt_as_txt}"], "unknown kind '.txt'"),
    (["{folder}"], "is a folder, not a model file"),
    (["{onnx}", "--threads", "100000"], "--threads 100000: more than the"),
    (["{onnx}", "--out", "{folder}"], "is a folder; give a file name"),
    (["{onnx}", "--batch_sizes", "1", "100000000"], "--batch_sizes 100000000: a batch that size needs about"),
])
def test_bench_bad_input_is_one_line(tmp_path: Path, capsys, args, message) -> None:
    onnx = tmp_path / "model.onnx"  # never loaded: every check comes first
    onnx.write_bytes(b"x")
    text = tmp_path / "model.txt"
    text.write_text("x")
    folder = tmp_path / "models.pt2"
    folder.mkdir()
    args = [a.format(onnx=onnx, ckpt_as_txt=text, folder=folder) for a in args]
    assert main(["bench", *args, "--no_cold_start"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_help(capsys) -> None:
    assert main(["bench", "--help"]) == 0
    printed = capsys.readouterr().out
    assert "--batch_sizes" in printed and "--config" in printed and "--runner" in printed


def test_bench_print_config_is_accepted_back_by_config(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["bench", "a.pt2", "b.onnx", "--batch_sizes", "1", "8", "--threads", "1", "--runner", "eager",
            "--no_cold_start", "--print_config"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["models"] == ["a.pt2", "b.onnx"] and config["batch_sizes"] == [1, 8]
    assert config["runner"] == "eager" and config["no_cold_start"] is True
    (tmp_path / "bench.yaml").write_text(printed)
    assert main(["bench", "--config=bench.yaml", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == config
    assert not list(tmp_path.glob("runs")), "printing the configuration measures nothing"


def test_results_go_to_runs_bench_by_default_which_git_ignores(tiny_checkpoint: Path, tmp_path: Path, capsys,
                                                               monkeypatch) -> None:
    """Not ``bench.<kind>.json`` in whatever folder the user is in: beside the other commands' runs, which
    ``.gitignore`` keeps out of a clone's changes, as it does ``litquant quantize``'s default ``quantized/``."""
    from litquant.cpu import cpu_info

    monkeypatch.chdir(tmp_path)
    assert main(["bench", str(tiny_checkpoint), "--batch_sizes", "1", "--threads", "1", "--rounds", "1",
                 "--calls", "2", "--runner", "eager", "--no_cold_start"]) == 0
    printed = capsys.readouterr().out
    out = Path("runs") / "bench" / f"bench.{cpu_info().isa}.json"
    assert f"wrote {out}" in printed and [p.name for p in tmp_path.iterdir()] == ["runs"]
    results = json.loads(out.read_text())
    assert results["cold_start"] is None and isinstance(results["results"][0]["unstable"], list)
    assert "nan" not in printed.lower() and "cold s" not in printed
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "runs/" in ignored and "quantized/" in ignored and "demo/" in ignored
