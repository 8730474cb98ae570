"""The tutorial pages in ``docs/`` (English) and ``docs/ja/`` (Japanese) show what the code prints today.

Each chapter's commands run again with ``docs/generate.py`` (on real MNIST) and the output is compared with the
committed English and Japanese pages; only durations, version numbers, the reason of the precision line and float
rounding (up to 0.02) may differ, and no console line is left out. The commands run under the generator's fixed
profile (AVX2 kernels, one thread), so that the pages hold on every CPU kind; a one-line change of any page is
caught all the same.
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
    # the reason of litquant's precision line names the CPU it ran on; the precision chosen is compared
    ("precision 32-true: CPU AMD EPYC (avx2) has no native bf16 (--trainer.precision overrides)\n",
     "precision 32-true: CPU Intel(R) Xeon(R) (avx2) may not use its native bf16 (--trainer.precision overrides)\n",
     True),
    ("precision 32-true: CPU A (avx2) has no native bf16 (--trainer.precision overrides)\n",
     "precision bf16-mixed + channels_last: CPU A has native bf16 (AMX) (--trainer.precision overrides)\n", False),
    ("precision 32-true: CPU A (avx2) has no native bf16 (--trainer.precision overrides)\n",
     "precision 32-true: CPU A (avx2) has no native bf16\n", False),
])
def test_masks_are_narrow(expected: str, actual: str, same: bool) -> None:
    assert generate.same_output(expected, actual) is same


def mutations(text: str) -> list[tuple[str, str]]:
    """One-line changes of a page's first console block: its command, and each kind of output line (a word, a
    number beyond float rounding, a line dropped, a line added)."""
    block = next(generate.FENCE.match(text, m.end()).group() for m in generate.DIRECTIVE.finditer(text)
                 if m.group(1) == "run")
    lines = block.splitlines(keepends=True)
    command = lines[1]  # "$ COMMAND"
    output = next(line for line in lines[2:] if re.search(r"[A-Za-z]{3}", line) and line.strip() != "```")
    number = next((line for line in lines[2:] if re.search(r"\d+\.\d+", line)), None)
    changed = {
        "command": command.replace("$ ", "$ echo ", 1),
        "output word": re.sub(r"[A-Za-z]{3,}", lambda m: m.group()[::-1] + "x", output, count=1),
        "output line dropped": "",
        "output line added": output + "an extra line\n",
    }
    cases = [(name, block.replace(command if name == "command" else output, new, 1)) for name, new in changed.items()]
    if number:
        moved = re.sub(r"\d+\.\d+", lambda m: f"{float(m.group()) + 0.5:.4f}", number, count=1)
        cases.append(("number", block.replace(number, moved, 1)))
    return [(name, text.replace(block, new_block, 1)) for name, new_block in cases]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", CHAPTERS)
def test_the_drift_check_catches_a_changed_command_or_output_line(page: str, language: str) -> None:
    """What ``test_page_matches_what_the_code_prints`` relies on: a page that differs from the code's output by
    one command or one output line is out of date, whatever its masks allow across CPUs."""
    text = (LANGUAGES[language] / page).read_text()
    assert generate.same_output(text, text)
    for name, mutated in mutations(text):
        assert mutated != text, name
        assert not generate.same_output(text, mutated), f"{page}: a changed {name} went unnoticed"


def test_pages_are_made_under_the_named_profile() -> None:
    """The generator's profile caps the kernels to AVX2 and one thread, and both index pages name it."""
    assert generate.PROFILE == {"OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                                "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    for folder in LANGUAGES.values():
        index = (folder / "index.md").read_text()
        assert f"`{generate.PROFILE_NAME}`" in index
        assert " ".join(f"{name}={value}" for name, value in generate.PROFILE.items()) in " ".join(index.split())


@pytest.mark.parametrize("command", [
    "python examples/checkpoint_load.py --help",
    "python -c 'import sys, warnings; print(1); warnings.warn(\"careful\"); print(2, file=sys.stderr)'",
    "python examples/basic_usage.py --train_size 256 --val_size 64 --test_size 64 --max_epochs 1 --out runs/b",
])
def test_in_process_run_prints_what_a_real_process_prints(tmp_path: Path, mnist_dir: Path, command: str) -> None:
    """Also the second time in one process: an example quiets the libraries on import, as in a new process. The
    generator runs in a process of its own, as when it writes the pages (pytest's log capture stays out)."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = f"""
import json, sys
sys.path.insert(0, {str(DOCS)!r})
import generate
from pathlib import Path
with generate._environment(Path.cwd(), Path({str(mnist_dir)!r})) as env:
    runs = [generate.run_command({command!r}, env, subprocess_only=False) for _ in range(2)]
    runs.append(generate.run_command({command!r}, env, subprocess_only=True))
print(json.dumps(runs))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    *in_process, real = json.loads(done.stdout.splitlines()[-1])

    def lines(output: str) -> str:  # each run is a new run folder; float digits follow the process's kernels
        return re.sub(r"\d+\.\d+", "X", re.sub(r"version_\d+", "version_N", output))

    assert [lines(output) for output in in_process] == [lines(real)] * 2
    assert "--ckpt_path CKPT_PATH" in real or "UserWarning: careful" in real or "test_acc" in real


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


def test_pages_were_regenerated_on_the_avx2_path(regenerated) -> None:
    """Whatever the CPU, the generator ran the pages' commands with litquant on the ``avx2`` kind (fp32 training,
    7-bit int8), as ``docs/index.md`` says."""
    profile = regenerated["profile"]
    assert profile["variables"] == generate.PROFILE
    assert "uses the avx2 kind" in profile["cpu"] and "32-true" in profile["cpu"] and "7-bit" in profile["cpu"]


def test_the_qat_chapter_tests_the_reloaded_last_checkpoint() -> None:
    text = (DOCS / "07-quantization.md").read_text()
    assert re.search(r"^tested \S+/checkpoints/last\.ckpt$", text, re.M)
    assert "no last checkpoint" not in text
