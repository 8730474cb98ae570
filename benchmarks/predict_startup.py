"""``litquant predict --model ptq.pt2 IMAGES`` from start to exit, per runner: what a user waits for.

One PT2E int8 ``.pt2`` (of ``--ckpt_path``, or of a model trained here for one epoch on ``--train_size`` samples)
classifies ``--counts`` PNG files of the test set in a fresh ``litquant predict`` process, with each ``--runner``
(``eager``, ``compile``, ``aot``), from a cold start (empty inductor and litquant caches) and from a warm one
(caches filled by an earlier run). Rounds are interleaved; the table gives medians and spreads of the wall time,
and which runner ``auto`` (predict's default) picks. Results go to ``results/predict_startup.<cpu kind>.json``
and ``.md``.

Example::

    python benchmarks/predict_startup.py --data_dir ../shared/data --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, alternate, datamodule, markdown_table, median, write_markdown
from int8_runners import make_artifacts
from PIL import Image

from litquant.cli.artifact_commands import PREDICT_COMPILE_FROM

NAME = "predict_startup"
RUNNERS = ("eager", "compile", "aot")


def write_images(images: torch.Tensor, folder: Path, count: int) -> Path:
    """``count`` of ``images`` (uint8, 28x28 each; repeated as needed) as PNG files in ``folder``."""
    folder.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(images[index % len(images)].reshape(28, 28).numpy()).save(folder / f"{index:05d}.png")
    return folder


def predict(model: Path, runner: str, images: Path, caches: Path) -> dict:
    """Wall seconds of one ``litquant predict`` process, with its compilation caches under ``caches``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TORCHINDUCTOR_CACHE_DIR": str(caches / "inductor"),
           "LITQUANT_CACHE": str(caches / "litquant")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "litquant.cli", "predict", "--model", str(model), "--runner", runner,
                    str(images)], env=env, check=True, capture_output=True)
    return {"seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=4096, val_size=1024, test_size=0)
    parser.add_argument("--ckpt_path", default=None, help="fp32 checkpoint (default: train one here)")
    parser.add_argument("--calibration_batches", type=int, default=16)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2000, 5000], help="images per predict run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="litquant-predict-startup-") as scratch_dir:
        scratch = Path(scratch_dir)
        pt2, _ = make_artifacts(args, scratch / "artifacts")
        images = datamodule(args).split("test").images
        folders = {count: write_images(images, scratch / f"images-{count}", count) for count in args.counts}
        fresh = itertools.count()
        variants = {}
        for runner in RUNNERS:
            warm = scratch / f"warm-{runner}"
            for count, folder in folders.items():
                predict(pt2, runner, folder, warm)  # fills this runner's caches for the batch sizes of this count
                variants[(runner, "warm", count)] = lambda r=runner, f=folder, c=warm: predict(pt2, r, f, c)
                if runner != "eager":  # eager compiles nothing: cold and warm are the same run
                    variants[(runner, "cold", count)] = \
                        lambda r=runner, f=folder: predict(pt2, r, f, scratch / f"cold-{next(fresh)}")
        results = alternate(variants, args.rounds)
    rows = []
    for (runner, cache, count), runs in results.items():
        seconds = [run["seconds"] for run in runs]
        auto = "compile" if count >= PREDICT_COMPILE_FROM else "eager"
        rows.append({"runner": runner, "caches": cache, "images": count, "median_s": median(seconds),
                     "spread_s": max(seconds) - min(seconds), "auto_picks_this": runner == auto})
    rows.sort(key=lambda row: (row["images"], row["median_s"]))
    env = environment()
    save_results(args.name, {"environment": env, "rows": rows, "auto_compile_from": PREDICT_COMPILE_FROM})
    fastest = {}
    for row in rows:
        fastest.setdefault(row["images"], row)
    body = markdown_table(["images", "runner", "caches", "median s", "spread s", "auto picks it"],
                          [[r["images"], r["runner"], r["caches"], r["median_s"], r["spread_s"],
                            "yes" if r["auto_picks_this"] else ""] for r in rows])
    body += (f"\nWall time of a whole `litquant predict --model ptq.pt2 --runner R FOLDER` process, {args.rounds} "
             f"interleaved rounds; cold: empty inductor and litquant caches; warm: caches filled by an earlier run. "
             f"`--runner auto` (the default) runs eager below {PREDICT_COMPILE_FROM} images, compiled from there.\n\n")
    body += "".join(f"- {count} image(s): fastest is {row['runner']} ({row['caches']}), {row['median_s']:.1f} s.\n"
                    for count, row in fastest.items())
    write_markdown(args.name, "litquant predict: start to exit, per runner", body, env)
    print(body)


if __name__ == "__main__":
    main()
