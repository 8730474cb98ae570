"""The package's shape: no import cycle between litquant's modules, counting imports inside functions; the
callbacks and quantization packages do not import each other; the quantization library does not import its
applications (``litquant.apps``); and the README's "How the code is laid out" lists exactly the modules that exist."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
import layout  # noqa: E402  docs/layout.py draws the README's block

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "litquant"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def top_level_imports(path: Path) -> set[str]:
    """The litquant modules ``path`` imports when it is imported (not inside functions, not for type checking)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    statements = [node for node in tree.body
                  if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))]
    for node in statements:
        for child in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(child, ast.Import):
                found |= {alias.name for alias in child.names}
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found |= {f"{child.module}.{alias.name}" if f"{child.module}.{alias.name}" in MODULES else child.module
                          for alias in child.names}
    return {name for name in found if name in MODULES}


GRAPH = {name: top_level_imports(path) - {name} for name, path in MODULES.items()}


def all_imports(path: Path) -> set[str]:
    """The litquant modules ``path`` imports anywhere: at the top and inside functions (not for type checking)."""
    return layout.imported_modules(path, MODULES) & MODULES.keys()


#: Every import, those inside functions included: a lazy import hides no circle.
FULL_GRAPH = {name: all_imports(path) - {name} for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_litquant_modules() -> None:
    """Counting every import, those inside functions too: a lazy import may buy start-up time, never hide a
    circle."""
    assert len(FULL_GRAPH) > 20 and FULL_GRAPH["litquant.quantization.ptq"]  # the graph was read
    assert find_cycle(FULL_GRAPH) is None, " -> ".join(find_cycle(FULL_GRAPH))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(("importer", "imported"), [("litquant.quantization", "litquant.callbacks"),
                                                    ("litquant.quantization", "litquant.apps"),
                                                    ("litquant.data", "litquant.quantization")])
def test_lower_layers_do_not_import_higher_ones(importer: str, imported: str) -> None:
    for name, targets in FULL_GRAPH.items():
        if name == importer or name.startswith(importer + "."):
            assert not [t for t in targets if t == imported or t.startswith(imported + ".")], name


@pytest.mark.parametrize("readme", ["README.md", "README.ja.md"])
def test_readme_layout_is_the_one_generated_from_the_tree(readme: str) -> None:
    """The block lists every package and module with its floor, as ``python docs/layout.py`` draws it now."""
    generated = layout.block()
    assert generated in (ROOT / readme).read_text(), f"{readme} is out of date: run python docs/layout.py"
    listed = set(re.findall(r"`(\w+\.py)`", generated))
    assert listed >= {path.name for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}
    assert "data → model → trainer → checkpoint → quantize → artifact → runtime → report" in (ROOT / readme).read_text()


def test_the_layout_refuses_a_circle(monkeypatch) -> None:
    monkeypatch.setattr(layout, "imported_modules", lambda path: {"litquant.cli", "litquant.cpu"})
    with pytest.raises(SystemExit, match="import circle"):
        layout.floors()
