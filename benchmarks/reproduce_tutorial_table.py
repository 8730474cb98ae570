"""Reproduce the original tutorial's 15-epoch MNIST table with litquant's default recipe.

Trains with ``litquant``'s defaults on full MNIST for each seed, tests the final and the best-``val_acc`` models,
and commits the per-epoch table, ``loss.png`` / ``acc.png`` (first seed) and the test accuracies. Seeds can
train side by side (``--workers``, each worker with its share of the cores), and ``--add`` merges new seeds into
the committed results instead of replacing them (each run keeps the command and date that made it; a ``note``
added by hand to a run in the JSON file, such as why its time is not comparable, is shown under the table).
Results go to ``results/tutorial_table.<cpu kind>.json``, ``.md`` and folder. Workers pay only with cores to
spare: on 2 cores, two 1-thread workers trained 3x slower than one 2-thread run::

    python benchmarks/reproduce_tutorial_table.py --data_dir ../shared/data --epochs 15 --seeds 42 43 44
    python benchmarks/reproduce_tutorial_table.py --data_dir ../shared/data --seeds 43 44 --add
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from environment import RESULTS, command_line, result_name, save_results
from harness import default_data_dir, write_markdown

from litquant.callbacks.metrics_tables import epoch_table
from litquant.cli.lightning import LitquantCLI


def train_and_test(data_dir: str, epochs: int, seed: int, root: Path, threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    cli = LitquantCLI(args=[
        f"--trainer.max_epochs={epochs}", f"--seed_everything={seed}", f"--data.seed={seed}",
        f"--data.data_dir={data_dir}", f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false",
    ], run=False)
    started = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_seconds = time.perf_counter() - started
    final = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    acc_callback = next(cb for cb in cli.trainer.checkpoint_callbacks if cb.monitor == "val_acc")
    best = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=acc_callback.best_model_path,
                            verbose=False)[0]
    log_dir = Path(cli.trainer.log_dir)
    rows = epoch_table(log_dir / "metrics.csv")
    return {
        "seed": seed, "epochs": epochs, "fit_seconds": round(fit_seconds, 1), "torch_threads": torch.get_num_threads(),
        "command": command_line(), "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "test_acc_final": final["test_acc"], "test_acc_best_val_acc": best["test_acc"],
        "best_val_acc": float(acc_callback.best_model_score), "log_dir": log_dir, "epoch_table": rows,
    }


NAME = result_name("tutorial_table")  # the JSON, the Markdown and the folder of the first seed's table and plots


def render_markdown(results: dict) -> None:
    """``results/<NAME>.md`` from ``results/<NAME>.json``: the summary, then the first seed's table."""
    summary, runs = results["summary"], results["runs"]
    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines = [
        f"{runs[0]['epochs']} epochs on full MNIST (55,000 train / 5,000 val), litquant's default recipe; "
        f"seed(s) {seeds}.\n",
        "| seed | test_acc (final model) | test_acc (best val_acc model) | best val_acc | fit s | threads | date |",
        "|---|---|---|---|---|---|---|",
        *(f"| {r['seed']} | {r['test_acc_final']:.4f} | {r['test_acc_best_val_acc']:.4f} | "
          f"{r['best_val_acc']:.4f} | {r['fit_seconds']}{' *' if r.get('note') else ''} | "
          f"{r.get('torch_threads', '')} | {r.get('date', '')[:10]} |" for r in runs),
        "",
        *(f"\\* Seed {r['seed']}: {r['note']}\n" for r in runs if r.get("note")),
        "Commands: " + "; ".join(dict.fromkeys(f"`{r['command']}`" for r in runs if r.get("command"))) + "\n",
        f"Mean final test accuracy {summary['test_acc_final_mean']:.4f} over {len(runs)} seed(s), standard deviation "
        f"{summary['test_acc_final_stdev']:.4f} (min {summary['test_acc_final_min']:.4f}, "
        f"max {summary['test_acc_final_max']:.4f}); target {summary['target_test_acc']}: "
        f"**{'met' if summary['test_acc_final_mean'] >= summary['target_test_acc'] else 'missed'}**.\n",
        f"Per-epoch table of seed {runs[0]['seed']} ([CSV]({NAME}/metrics_table.csv)), "
        "as the original tutorial's table:\n",
        "| epoch | train_loss / val_loss | train_acc / val_acc |",
        "| :-: | :-: | :-: |",
        *(f"| {row['epoch']} | {row['train_loss']:.6f} / {row['val_loss']:.6f} | "
          f"{row['train_acc']:.6f} / {row['val_acc']:.6f} |" for row in runs[0]["epoch_table"]),
        f"| Graph | ![]({NAME}/loss.png) | ![]({NAME}/acc.png) |",
    ]
    write_markdown(NAME, "Reproduction of the original tutorial's 15-epoch table", "\n".join(lines) + "\n",
                   results["environment"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", "--data.data_dir", dest="data_dir", default=default_data_dir(),
                        help="folder with the MNIST .gz files (default: ../shared/data or the product's cache)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--workers", type=int, default=1, help="seeds trained side by side (default: one at a time)")
    parser.add_argument("--add", action="store_true",
                        help=f"merge into results/{NAME}.json (same seeds replaced) instead of replacing it")
    parser.add_argument("--markdown_only", action="store_true",
                        help=f"only re-render results/{NAME}.md from results/{NAME}.json")
    args = parser.parse_args()
    if args.markdown_only:
        render_markdown(json.loads((RESULTS / f"{NAME}.json").read_text()))
        return
    out = RESULTS / NAME
    previous = []
    if args.add:
        committed = json.loads((RESULTS / f"{NAME}.json").read_text())
        previous = [{"command": committed["environment"]["command"], "date": committed["environment"]["date"],
                     "torch_threads": committed["environment"]["torch_threads"], **run} for run in committed["runs"]]
    runs_by_seed = {run["seed"]: run for run in previous}  # a new run of a seed takes its old place
    first_seed = previous[0]["seed"] if previous else args.seeds[0]  # its table and plots are the committed ones
    threads = max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else None
    with tempfile.TemporaryDirectory(prefix="litquant-repro-") as work, ProcessPoolExecutor(
            args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(train_and_test, args.data_dir, args.epochs, seed, Path(work) / f"seed{seed}", threads)
                for seed in args.seeds]
        for job in jobs:
            run = job.result()
            print(f"seed {run['seed']}: test_acc final {run['test_acc_final']:.4f}, "
                  f"best val_acc model {run['test_acc_best_val_acc']:.4f} ({run['fit_seconds']} s)")
            if run["seed"] == first_seed:
                out.mkdir(parents=True, exist_ok=True)
                for name in ("metrics.csv", "metrics_table.csv", "metrics_table.md", "loss.png", "acc.png"):
                    shutil.copy(run["log_dir"] / name, out / name)
            run["log_dir"] = run["log_dir"].relative_to(Path(work)).as_posix()  # within the run's own folder
            runs_by_seed[run["seed"]] = run
    runs = list(runs_by_seed.values())
    finals = [r["test_acc_final"] for r in runs]
    summary = {
        "test_acc_final_mean": statistics.mean(finals),
        "test_acc_final_min": min(finals),
        "test_acc_final_max": max(finals),
        "test_acc_final_stdev": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "target_test_acc": 0.993,
    }
    print(f"mean test_acc over {len(runs)} seed(s): {summary['test_acc_final_mean']:.4f}")
    path = save_results(NAME, {"summary": summary, "runs": runs})
    render_markdown(json.loads(path.read_text()))


if __name__ == "__main__":
    main()
