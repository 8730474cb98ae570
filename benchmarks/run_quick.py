"""``make bench``: Lightning's overhead, training throughput and inference on a subset of MNIST.

Each benchmark runs in its own process (fresh thread settings and compilation caches) and writes
``results/<name>_quick.<cpu kind>.json`` and ``.md``; the full-size results come from running the scripts themselves
(see ``benchmarks/README.md``). About 5 minutes on 2 idle cores::

    python benchmarks/run_quick.py --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from environment import result_name
from harness import default_data_dir

HERE = Path(__file__).resolve().parent

QUICK = {
    "lightning_overhead": ["--train_size=1500", "--val_size=500", "--rounds=3"],
    "training_throughput": ["--train_size=1500", "--val_size=500", "--rounds=2", "--factor_samples=512"],
    "inference": ["--train_size=3000", "--val_size=500", "--test_size=2000", "--train_epochs=1",
                  "--quant.qat_max_steps=20", "--quant.calibration_batches=8", "--rounds=2", "--repeats=10"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", "--data.data_dir", dest="data_dir", default=default_data_dir(),
                        help="folder with the MNIST .gz files")
    parser.add_argument("--only", default=",".join(QUICK),
                        help="comma-separated benchmarks to run (default: %(default)s)")
    args = parser.parse_args()
    # absolute, since the benchmarks run from their own folder (the results record it relative to the repository)
    data = [f"--data_dir={os.path.abspath(args.data_dir)}"] if args.data_dir else []
    timings = {}
    for name in args.only.split(","):
        started = time.perf_counter()
        output = result_name(f"{name}_quick")
        command = [sys.executable, str(HERE / f"{name}.py"), *QUICK[name], *data, f"--name={output}"]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=HERE)
        timings[name] = time.perf_counter() - started
    print("\n".join(f"{name}: {seconds:.0f} s" for name, seconds in timings.items()))
    print(f"total: {sum(timings.values()):.0f} s; results in {HERE / 'results'}")


if __name__ == "__main__":
    main()
