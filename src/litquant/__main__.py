"""``python -m litquant``: the ``litquant`` command."""

import sys

from litquant.cli import main

sys.exit(main())
