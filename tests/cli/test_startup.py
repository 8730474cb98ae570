"""``litquant --version`` and ``--help`` import no torch, no Lightning (and no jsonargparse): each in a fresh process,
as a user starts it, and ``python -m litquant`` runs the same command."""

from __future__ import annotations

import pytest
from helpers import run_python

HEAVY = ("torch", "lightning", "jsonargparse", "onnxruntime", "torchao")


@pytest.mark.parametrize("argument", ["--version", "--help"])
def test_version_and_help_import_no_torch(argument: str) -> None:
    result = run_python("-c", "import sys; from litquant.cli import main; code = main([sys.argv[1]]); "
                        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
                        "assert not heavy, f'imported: {heavy}'; sys.exit(code)", argument)
    assert result.returncode == 0 and "litquant" in result.stdout


def test_python_m_litquant_is_the_command() -> None:
    from litquant import __version__

    assert run_python("-m", "litquant", "--version").stdout.strip() == f"litquant {__version__}"
