"""README.md and README.ja.md say the same things: same sections, same commands, same results, same links."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_JA = ROOT / "README.ja.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def load_generate():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def headings(text: str) -> list[int]:
    """The level of every heading, in order (fenced blocks left out)."""
    return [len(m.group(1)) for m in re.finditer(r"^(#{1,6}) \S", FENCE.sub("", text), re.MULTILINE)]


def code_blocks(text: str) -> list[str]:
    return [block.strip() for block in FENCE.findall(text)]


def commands(text: str) -> set[str]:
    """Every ``litquant ...``, ``make ...``, ``python ...``, ``torchrun ...`` and ``srun ...`` command, in code
    blocks or inline code."""
    found = {line.strip() for block in code_blocks(text) for line in block.splitlines() if line.strip()}
    found |= set(re.findall(r"`((?:litquant|make|python|torchrun|srun) [^`]+)`", FENCE.sub("", text)))
    return found


def links(text: str) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not target.startswith("README")]


@pytest.fixture(scope="module")
def texts() -> tuple[str, str]:
    return README.read_text(), README_JA.read_text()


def test_both_start_with_the_title_one_line_and_the_two_commands(texts) -> None:
    for text in texts:
        lines = text.splitlines()
        assert lines[0] == "# litquant" and lines[1] == "" and lines[2] and lines[3] == ""
        assert code_blocks("\n".join(lines[4:]))[0] == "make demo\nmake test"
        assert lines[4].startswith("```") and lines[7] == "```"


def test_same_sections_in_the_same_order(texts) -> None:
    english, japanese = (headings(text) for text in texts)
    assert english == japanese
    assert english.count(2) >= 8  # what, tour, results, tutorial, data, trust, multi-GPU, development


def test_same_commands(texts) -> None:
    english, japanese = texts
    assert code_blocks(english) == code_blocks(japanese)
    assert commands(english) == commands(japanese)
    for needed in ("litquant fit --trainer.max_epochs 3",
                   "litquant test --ckpt_path runs/mnist/version_0/checkpoints/last.ckpt", "litquant demo --out demo",
                   "litquant info callbacks", "litquant info loggers"):
        assert needed in commands(english)
    assert any(c.startswith("litquant predict") for c in commands(english))
    assert any(c.startswith("litquant quantize") for c in commands(english))
    assert any(c.startswith("litquant evaluate") for c in commands(english))
    assert any("--trainer.strategy ddp --trainer.devices" in c for c in commands(english))


def test_same_links_and_every_link_exists(texts) -> None:
    english, japanese = (links(text) for text in texts)
    assert sorted(english) == sorted(japanese)  # the order may follow each language's word order
    for target in english:
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    for page in sorted((ROOT / "docs").glob("[0-9][0-9]-*.md")):
        assert f"docs/{page.name}" in english


def test_results_section_is_generated_and_identical_in_both(texts) -> None:
    generate = load_generate()
    for text in texts:
        assert text.count("<!-- results:begin -->") == 1 and text.count("<!-- results:end -->") == 1
        assert generate.render_readme(text) == text, "run `python docs/generate.py` to refresh the results"
    english, japanese = (re.search(r"<!-- results:begin -->.*?<!-- results:end -->", t, re.S).group() for t in texts)
    assert english == japanese


def test_a_missing_command_in_one_readme_is_detected(texts) -> None:
    english, japanese = texts
    dropped = japanese.replace("litquant info loggers\n", "", 1)
    assert code_blocks(dropped) != code_blocks(english)
    renamed = japanese.replace("## 信頼モデル", "### 信頼モデル", 1)
    assert headings(renamed) != headings(english)
