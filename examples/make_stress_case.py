"""Write the built-in int8 stress case of a trained checkpoint: a few conv1 output channels 300 times larger,
conv2 reading them 300 times weaker. The fp32 model computes the same function; plain PTQ loses accuracy.

Usage::

    python examples/make_stress_case.py last runs/stress.ckpt      # last: the newest fit run's last.ckpt
"""

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import sys

from litquant.apps.stress import main

if __name__ == "__main__":
    sys.exit(main())
