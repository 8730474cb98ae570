"""Are the demo report's latencies stable? ``litquant demo`` three times, the report latencies compared.

Each run is a real ``litquant demo`` (a separate process, into its own folder). For every model of the
report (the int8 rows and the fp32 baselines) and every latency column (p50 at batch 1 and 256), the
max/min ratio over the runs; the target is that no ratio exceeds 1.2 (within 20 %). Results go to
``results/demo_stability.<cpu kind>.json`` and ``.md``, with the load average before and after each run (the
machine may be shared, and other processes on the same cores are the usual cause of a spread).

By default the demo runs on small settings so the three runs fit in a few minutes on two cores
(``--data.train_size 1000 --trainer.max_epochs 1``, short QAT and calibration); ``--full`` uses the
``make demo`` defaults.

Example::

    python benchmarks/demo_stability.py --data_dir ../shared/data
    python benchmarks/demo_stability.py --data_dir ../shared/data --full
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from environment import environment, portable, save_results
from harness import default_data_dir, markdown_table, write_markdown

from litquant.cpu import cpu_info

#: Latency columns of ``report.json`` compared across runs.
COLUMNS = ("latency_ms_b1", "latency_ms_b256")
TARGET_RATIO = 1.2
SMALL = ["--data.train_size=1000", "--trainer.max_epochs=1", "--quant.qat_max_steps=10",
         "--quant.calibration_batches=4"]


def report_latencies(report: Path) -> dict[str, dict[str, float]]:
    """``{model: {column: ms}}`` of one ``report.json``, fp32 baselines included."""
    rows = json.loads(report.read_text())
    models = {row["method"]: row for row in rows}
    models.update(rows[0].get("fp32_baselines", {}))
    return {name: {c: entry[c] for c in COLUMNS if entry.get(c)} for name, entry in models.items()}


def run_demo(out: Path, data_dir: str | None, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "litquant.cli", "demo", "--out", str(out), *extra]
    if data_dir:
        command += ["--data.data_dir", data_dir]
    before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    run = {"seconds": round(time.perf_counter() - started, 1), "exit": done.returncode,
           "loadavg_before": [round(x, 2) for x in before], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    if done.returncode:
        run["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
    else:
        run["latencies"] = report_latencies(out / "report.json")
    print(f"run: {json.dumps({k: v for k, v in run.items() if k != 'latencies'})}", flush=True)
    return run


def compare(runs: list[dict]) -> list[dict]:
    """Per model and column: the values of every run, max/min ratio, met or not."""
    measured = [run["latencies"] for run in runs if "latencies" in run]
    rows = []
    for model in measured[0] if measured else {}:
        for column in COLUMNS:
            values = [m[model][column] for m in measured if column in m.get(model, {})]
            if len(values) == len(measured) and values:
                ratio = max(values) / min(values)
                rows.append({"model": model, "column": column, "values_ms": values, "max_over_min": round(ratio, 3),
                             "met": ratio <= TARGET_RATIO})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=default_data_dir())
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the `make demo` settings instead of small ones")
    parser.add_argument("--keep", default=None, help="folder to keep the demo outputs in (default: temporary)")
    args, extra = parser.parse_known_args()
    demo_args = extra if args.full else SMALL + extra
    with tempfile.TemporaryDirectory(prefix="demo-stability-") as scratch:
        root = Path(args.keep or scratch)
        runs = [run_demo(root / f"run{i + 1}", args.data_dir, demo_args) for i in range(args.runs)]
    comparison = compare(runs)
    met = bool(comparison) and all(row["met"] for row in comparison)
    summary = (f"{'met' if met else 'NOT met'}: report latencies within {TARGET_RATIO - 1:.0%} across "
               f"{len(runs)} runs (worst max/min "
               f"{max((r['max_over_min'] for r in comparison), default=float('nan')):.2f})")
    print(summary)
    name = f"demo_stability.{cpu_info().isa}"
    env = environment()
    save_results(name, {"settings": "full" if args.full else "small", "demo_args": demo_args, "runs": runs,
                        "comparison": comparison, "target_max_over_min": TARGET_RATIO, "met": met})
    table = markdown_table(["model", "latency", *[f"run {i + 1} (ms)" for i in range(len(runs))], "max/min", "met"],
                           [[r["model"], r["column"], *r["values_ms"], r["max_over_min"], "yes" if r["met"] else "no"]
                            for r in comparison])
    load = markdown_table(["run", "seconds", "exit", "load avg before (1/5/15 min)", "load avg after"],
                          [[i + 1, r["seconds"], r["exit"], " / ".join(map(str, r["loadavg_before"])),
                            " / ".join(map(str, r["loadavg_after"]))] for i, r in enumerate(runs)])
    write_markdown(name, "Demo report latency stability", portable(
        f"Demo settings: `{' '.join(demo_args)}`.\n\n**{summary}**.\n\n{table}\nMachine load during the runs "
        f"(the cores may be shared with other processes):\n\n{load}"), env)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
