"""``python -m litquant.cli``: the ``litquant`` command."""

import sys

from litquant.cli import main

sys.exit(main())
