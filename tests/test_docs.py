"""The tutorial pages in ``docs/`` show what the code prints today.

Each page is regenerated with ``docs/generate.py`` (its commands run again on real MNIST) and compared with
the committed page; only durations, version numbers and float rounding (up to 0.02) may differ.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHAPTERS = ["01-model-design.md", "02-trainer-setup.md", "03-training.md", "04-checkpoints.md", "05-callbacks.md",
            "06-loggers.md", "07-quantization.md"]


def load_generate():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = load_generate()


def test_one_page_per_chapter_in_the_tutorials_order() -> None:
    index = (DOCS / "index.md").read_text()
    assert sorted(p.name for p in DOCS.glob("[0-9][0-9]-*.md")) == CHAPTERS
    positions = [index.index(f"({page})") for page in CHAPTERS]
    assert positions == sorted(positions)


def test_every_example_is_run_or_shown_by_a_page() -> None:
    text = "\n".join((DOCS / page).read_text() for page in CHAPTERS)
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert re.search(rf"<!-- (run|include)[^>]*examples/{example.name}", text), example.name


def test_every_page_has_generated_output() -> None:
    for page in CHAPTERS:
        text = (DOCS / page).read_text()
        directives = generate.DIRECTIVE.findall(text)
        assert any(kind == "run" for kind, _, _ in directives), page
        for match in generate.DIRECTIVE.finditer(text):  # each directive is followed by its filled block
            block = generate.FENCE.match(text, match.end())
            assert block and block.group().count("\n") > 2, f"{page}: empty block after {match.group(3)!r}"


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("test_acc 0.9123\n", "test_acc 0.9123\n", True),
    ("test_acc 0.9123\n", "test_acc 0.9201\n", True),  # float rounding between CPUs
    ("test_acc 0.9123\n", "test_acc 0.8123\n", False),  # a real change
    ("epoch=02-val_loss=0.0412.ckpt\n", "epoch=01-val_loss=0.0412.ckpt\n", False),
    ("took 12.3 ms\n", "took 9.1 ms\n", True),
    ("   test_acc        0.925000011920929\n", "   test_acc       0.9259999990463257\n", True),  # cell padding
    ("test_acc 0.9123\n", "test_acc  0.9123\n", True),
    ("test_acc 0.9123\n", "test_acc0.9123\n", False),
    ("# lightning.pytorch==2.6.6\n", "# lightning.pytorch==2.7.0\n", True),
    ("saved runs/ptq.pt2\n", "saved runs/qat.pt2\n", False),
    ("a\nb\n", "a\n", False),
])
def test_masks_are_narrow(expected: str, actual: str, same: bool) -> None:
    assert generate.same_output(expected, actual) is same


def test_in_process_run_prints_what_a_real_process_prints(tmp_path: Path) -> None:
    command = "python examples/checkpoint_load.py --help"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    with generate._environment(tmp_path, None) as env:
        in_process = generate.run_command(command, env, subprocess_only=False)
        real = generate.run_command(command, env, subprocess_only=True)
    assert in_process == real and "--ckpt_path CKPT_PATH" in real


@pytest.mark.parametrize("page", CHAPTERS)
def test_page_matches_what_the_code_prints(page: str, mnist_dir: Path) -> None:
    text = (DOCS / page).read_text()
    regenerated = generate.render_page(text, mnist_dir)
    assert generate.same_output(text, regenerated), (
        f"docs/{page} is out of date; run `python docs/generate.py docs/{page}`:\n"
        + generate.diff(text, regenerated, f"docs/{page}")[-6000:]
    )
