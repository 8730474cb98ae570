"""``litquant bench`` on tiny models: the table, the JSON (CPU flags, versions), cold starts. (Its options:
``tests/cli/test_bench_command.py``.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from litquant.apps.bench import _percentile
from litquant.cli import main
from litquant.quantization import export_fp32


@pytest.fixture(scope="module")
def models(tiny_checkpoint: Path, tmp_path_factory, mnist_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bench")
    checkpoint = tiny_checkpoint
    export_fp32(checkpoint, root / "out", progress=False)
    return checkpoint, root / "out" / "onnxruntime.fp32.onnx"


def test_bench_prints_a_table_and_writes_json(models, tmp_path: Path, capsys) -> None:
    checkpoint, onnx = models
    out = tmp_path / "bench.json"
    most = str(min(2, len(os.sched_getaffinity(0))))  # bench refuses more threads than CPUs
    code = main(["bench", str(checkpoint), str(onnx), "--batch_sizes", "1", "3", "1", "--threads", "1", most, most,
                 "--rounds", "2", "--calls", "3", "--out", str(out)])  # a size or count given twice runs once
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads(out.read_text())
    rows = results["results"]
    assert sorted((r["model"], r["batch_size"], r["threads"]) for r in rows) == sorted(
        (str(m), b, t) for m in models for b in (1, 3) for t in sorted({1, int(most)}))
    for row in rows:
        assert 0 < row["p50_ms"] <= row["p90_ms"] and row["spread"] >= 0 and row["rounds"] == 2
        assert f"{row['p50_ms']:.4g}" in printed
    env = results["environment"]
    assert env["cpu"]["isa"] and isinstance(env["cpu"]["flags"], list) and env["versions"]["torch"]
    cold = results["cold_start"]["models"]
    for model in models:  # each measured in a fresh process of its own
        assert cold[str(model)]["cold_start_s"] >= cold[str(model)]["load_s"] > 0
        assert cold[str(model)]["peak_rss_mb"] > 50 and cold[str(model)]["rss_growth_mb"] > 0


def test_percentile() -> None:
    assert _percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.9) == 5.0 and _percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_peak_rss_of_a_fresh_process_is_its_own_not_its_parents(models) -> None:
    """Linux carries ``ru_maxrss`` over ``execve``: a cold start started by a big process (the demo, holding its
    models) once reported the parent's peak for every model."""
    from litquant.apps.bench import _rss_mb, cold_start_in_fresh_process

    ballast = bytearray(2 * 2**30)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # resident, not only reserved
    parent_mb = _rss_mb()
    assert parent_mb > 2048
    start = cold_start_in_fresh_process(str(models[1]), 1, 1)
    del ballast
    assert 50 < start["peak_rss_mb"] < parent_mb - 1024, (start, parent_mb)
