"""``litquant bench`` on tiny models: the table, the JSON (CPU flags, versions), cold starts. (Its options:
``tests/cli/test_bench_command.py``.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from litquant.apps.bench import _percentile, format_table, unstable_rows
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


def _row(model: str, threads: int, p50: float, spread: float = 0.05, p90: float | None = None) -> dict:
    return {"model": model, "batch_size": 1, "threads": threads, "p50_ms": p50, "p90_ms": p90 or p50 * 1.1,
            "spread": spread}


def test_a_steady_load_is_judged_against_the_1_thread_figure_not_the_spread_alone() -> None:
    """The report of a loaded machine: 96 ms p50 at 2 threads with a 5% spread, where 1 thread ran in 1 ms."""
    rows = [_row("ptq.pt2", 1, 1.0), _row("ptq.pt2", 2, 96.0), _row("fp32.onnx", 1, 2.0), _row("fp32.onnx", 2, 1.2)]
    found = unstable_rows(rows)
    assert [(row["model"], row["threads"]) for row, _ in found] == [("ptq.pt2", 2)]
    assert found[0][1] == ["96.0x slower than with fewer threads"]
    table = format_table(rows, {})
    assert "unstable: ptq.pt2 at batch 1, 2 thread(s): 96.0x slower than with fewer threads" in table
    assert "measure again on an idle machine" in table


def test_rounds_far_apart_or_a_long_tail_are_unstable_and_steady_figures_are_not() -> None:
    assert [problems for _, problems in unstable_rows([_row("a", 1, 1.0, spread=0.3), _row("b", 1, 1.0, p90=3.0),
                                                       _row("c", 1, 1.0)])] == [["its rounds 30% apart"],
                                                                                 ["p90 3.0x the p50"]]
    assert "unstable" not in format_table([_row("c", 1, 1.0), _row("c", 2, 1.2)], {})


def test_without_cold_starts_the_table_leaves_their_columns_out_and_a_failed_one_reads_dash() -> None:
    rows = [_row("a.onnx", 1, 1.0), _row("b.pt2", 1, 2.0)]
    table = format_table(rows, {})
    assert "cold s" not in table and "nan" not in table.lower()
    table = format_table(rows, {"a.onnx": {"cold_start_s": 1.5, "rss_growth_mb": 30.0}, "b.pt2": {"error": "x"}})
    assert "cold s" in table and "nan" not in table.lower()
    assert table.splitlines()[3].split()[-2:] == ["-", "-"] and table.splitlines()[2].split()[-2:] == ["1.5", "30"]
