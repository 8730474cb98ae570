"""The tutorial pages in ``docs/`` (English) and ``docs/ja/`` (Japanese) show what the code prints today.

Each chapter's commands run again with ``docs/generate.py`` (on real MNIST) and the output is compared with the
committed English and Japanese pages; only durations, version numbers and float rounding (up to 0.02) may
differ, and no console line is left out unless a filter of ``OUTPUT_FILTERS`` is still needed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
JA = DOCS / "ja"
LANGUAGES = {"en": DOCS, "ja": JA}
CHAPTERS = ["01-model-design.md", "02-trainer-setup.md", "03-training.md", "04-checkpoints.md", "05-callbacks.md",
            "06-loggers.md", "07-quantization.md", "08-choosing-a-quantization.md", "09-your-own-model.md"]


def load_generate():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = load_generate()


@pytest.mark.parametrize("folder", LANGUAGES.values(), ids=LANGUAGES.keys())
def test_one_page_per_chapter_in_the_tutorials_order(folder: Path) -> None:
    index = (folder / "index.md").read_text()
    assert sorted(p.name for p in folder.glob("[0-9][0-9]-*.md")) == CHAPTERS
    positions = [index.index(f"({page})") for page in CHAPTERS]
    assert positions == sorted(positions)


def test_every_example_is_run_or_shown_by_a_page() -> None:
    text = "\n".join((DOCS / page).read_text() for page in CHAPTERS)
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert re.search(rf"<!-- (run|include)[^>]*examples/{example.name}", text), example.name


@pytest.mark.parametrize("folder", LANGUAGES.values(), ids=LANGUAGES.keys())
def test_every_page_has_generated_output(folder: Path) -> None:
    for page in CHAPTERS:
        text = (folder / page).read_text()
        directives = generate.DIRECTIVE.findall(text)
        assert any(kind == "run" for kind, _, _ in directives), page
        for match in generate.DIRECTIVE.finditer(text):  # each directive is followed by its filled block
            block = generate.FENCE.match(text, match.end())
            assert block and block.group().count("\n") > 2, f"{page}: empty block after {match.group(3)!r}"


def generated_blocks(text: str) -> list[str]:
    return [generate.FENCE.match(text, match.end()).group() for match in generate.DIRECTIVE.finditer(text)]


@pytest.mark.parametrize("page", CHAPTERS)
def test_japanese_page_runs_the_same_commands_and_shows_the_same_output(page: str) -> None:
    english, japanese = (DOCS / page).read_text(), (JA / page).read_text()
    assert generate.same_directives(english, japanese)
    assert generated_blocks(japanese) == generated_blocks(english)
    prose = generate.FENCE.sub("", japanese)
    assert len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", prose)) > 200, "the prose is not translated"
    links = re.findall(r"\]\(((?!https?:)[^)#\s]+)", prose)
    assert all((JA / target).resolve().exists() for target in links), links


def test_a_translation_that_runs_another_command_is_refused() -> None:
    english = (DOCS / CHAPTERS[0]).read_text()
    japanese = (JA / CHAPTERS[0]).read_text()
    first = generate.DIRECTIVE.search(japanese).group()
    changed = japanese.replace(first, first.replace("-->", "--extra -->"), 1)
    assert generate.same_directives(english, japanese) and not generate.same_directives(english, changed)


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


@pytest.mark.parametrize("command", [
    "python examples/checkpoint_load.py --help",
    "python -c 'import sys, warnings; print(1); warnings.warn(\"careful\"); print(2, file=sys.stderr)'",
])
def test_in_process_run_prints_what_a_real_process_prints(tmp_path: Path, command: str) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    with generate._environment(tmp_path, None) as env:
        in_process = generate.run_command(command, env, subprocess_only=False)
        real = generate.run_command(command, env, subprocess_only=True)
    assert in_process == real
    assert "--ckpt_path CKPT_PATH" in real or "UserWarning: careful" in real  # stderr shown, as in a terminal


@pytest.fixture(scope="module")
def regenerated(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every chapter's generated blocks (its commands run once for both languages) and the filter hits, from
    ``docs/generate.py`` in its own process: the warnings a user sees do not depend on pytest's settings."""
    out = tmp_path_factory.mktemp("docs") / "blocks.json"
    result = subprocess.run([sys.executable, str(DOCS / "generate.py"), "--data_dir", str(mnist_dir),
                             "--blocks", str(out), *(str(DOCS / page) for page in CHAPTERS)],
                            capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", CHAPTERS)
def test_page_matches_what_the_code_prints(page: str, language: str, regenerated) -> None:
    path = LANGUAGES[language] / page
    text = path.read_text()
    new = generate.fill_page(text, regenerated["pages"][page])
    name = path.relative_to(ROOT).as_posix()
    assert generate.same_output(text, new), (
        f"{name} is out of date; run `python docs/generate.py docs/{page}`:\n" + generate.diff(text, new, name)[-6000:]
    )


def test_every_output_filter_is_still_needed(regenerated) -> None:
    unused = [pattern for pattern in generate.OUTPUT_FILTERS if not regenerated["filter_hits"].get(pattern)]
    assert not unused, f"no command prints these lines any more; delete them from OUTPUT_FILTERS: {unused}"


def test_the_qat_chapter_tests_the_reloaded_last_checkpoint() -> None:
    text = (DOCS / "07-quantization.md").read_text()
    assert re.search(r"^tested \S+/checkpoints/last\.ckpt$", text, re.M)
    assert "no last checkpoint" not in text
