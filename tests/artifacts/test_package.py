"""The artifacts package imports in one direction, in-function imports included, and its entry points do not
import PyTorch."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import run_python

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "litquant" / "artifacts"
#: The modules from the bottom up: each may import only those before it (as the package's docstring lists them).
ORDER = ["errors", "strict_json", "signature", "onnx_check", "files", "description", "pt2_schema", "pt2_file",
         "pt2_inputs", "pt2_graph", "onnx_file", "saving", "private_cache", "inductor", "batching", "compiled", "aot",
         "loading"]


def _imported_artifact_modules(path: Path) -> set[str]:
    """Every ``litquant.artifacts`` module that ``path`` imports anywhere, inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("litquant."):
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[2] for name in names
                  if name.startswith("litquant.artifacts.") and name.split(".")[2] in ORDER}
    return found


def test_every_module_is_in_the_order_and_imports_only_modules_below_it() -> None:
    assert sorted(ORDER) == sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    for index, name in enumerate(ORDER):
        upward = _imported_artifact_modules(PACKAGE / f"{name}.py") - set(ORDER[:index])
        assert not upward, f"{name} imports {sorted(upward)}, not below it"


def test_importing_the_package_and_its_loader_does_not_import_torch() -> None:
    script = ("import sys\nimport litquant.artifacts\nimport litquant.artifacts.loading\n"
              "import litquant.artifacts.description\nassert 'torch' not in sys.modules\n")
    run_python("-c", script)
