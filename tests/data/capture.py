"""Capture the CPU at hand into ``tests/data/cpu-<kind>/``: what the CPU-dependent tests read for each kind.

Writes ``lscpu.txt`` (``lscpu``), ``cpuinfo-flags.txt`` (the first ``flags`` line of ``/proc/cpuinfo``) and
``aot-ptq-batch{1,256}.cpp``: the C++ that AOTInductor generates here for the tests' tiny PTQ int8 model (one
epoch on 1,024 real MNIST images, as ``tests/quantization_helpers.py`` trains it), with ``max_autotune`` as
``--runner aot`` builds it. Paths of the machine are replaced by ``<inductor-cache>``, ``<venv>``, ``<python>``.
Run it on a CPU kind that ``tests/data/`` does not hold yet, and commit the folder::

    python tests/data/capture.py --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: quantization_helpers


def scrubbed(source: str) -> str:
    """``source`` without this machine's paths (inductor's cache folder, the environment, Python's prefix)."""
    source = re.sub(r"/\S*?/torchinductor_[^/\s]+", "<inductor-cache>", source)
    for path, name in ((sys.prefix, "<venv>"), (sys.base_prefix, "<python>"), (str(Path.home()), "<home>")):
        source = source.replace(path, name)
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 256])
    args = parser.parse_args(argv)

    import torch
    from quantization_helpers import small_datamodule, train_tiny_checkpoint

    from litquant.artifacts.aot import _build, _sources
    from litquant.artifacts.inductor import int8_kernel_counts
    from litquant.artifacts.pt2_file import load_program
    from litquant.cpu import cpu_info
    from litquant.quantization import QuantizeConfig, quantize

    out = HERE / f"cpu-{cpu_info().isa}"
    out.mkdir(exist_ok=True)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    (out / "lscpu.txt").write_text(lscpu)
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    (out / "cpuinfo-flags.txt").write_text(flags + "\n")
    with tempfile.TemporaryDirectory(prefix="litquant-capture-") as tmp:
        root = Path(tmp)
        checkpoint = train_tiny_checkpoint(root, Path(args.data_dir))
        pt2 = quantize("ptq", checkpoint, small_datamodule(Path(args.data_dir)), root / "out",
                       config=QuantizeConfig(calibration_batches=4), progress=False)
        program, _ = load_program(pt2, pt2.read_bytes())
        for size in args.batch_sizes:
            with torch.inference_mode(False):
                data, _ = _build(program, size, root / "aot" / f"batch{size}.pt2", max_autotune=True,
                                 check_int8=False)  # captured as generated: the tests judge it
            source = scrubbed(_sources(data))
            (out / f"aot-ptq-batch{size}.cpp").write_text(source)
            print(f"batch {size}: {int8_kernel_counts(source)}")
    print(f"wrote {out.relative_to(HERE.parents[1])}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
