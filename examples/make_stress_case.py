"""Write the built-in int8 stress case of a trained checkpoint: a few conv1 output channels 300 times larger,
conv2 reading them 300 times weaker. The fp32 model computes the same function; plain PTQ loses accuracy.

Usage::

    python examples/make_stress_case.py runs/mnist/version_0/checkpoints/last.ckpt runs/stress.ckpt
"""

import sys

from litquant.quantization.stress import main

if __name__ == "__main__":
    sys.exit(main())
