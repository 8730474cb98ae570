"""README.md and README.ja.md say the same things: same sections, same commands, same results, same links."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
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
    for needed in ("litquant fit",
                   "litquant test --ckpt_path last", "litquant demo --out demo",
                   "litquant info callbacks", "litquant info loggers"):
        assert needed in commands(english)
    assert any(c.startswith("litquant predict") for c in commands(english))
    assert any(c.startswith("litquant quantize") for c in commands(english))
    assert any(c.startswith("litquant evaluate") for c in commands(english))
    assert any("--trainer.strategy ddp --trainer.devices" in c for c in commands(english))


def test_same_links_and_every_link_exists(texts) -> None:
    english, japanese = (links(text) for text in texts)
    # the same targets (the order may follow each language's word order); each README's tutorial links lead to
    # the pages in its language, and each also names the other language's index
    assert sorted({t.replace("docs/ja/", "docs/") for t in english}) == \
        sorted({t.replace("docs/ja/", "docs/") for t in japanese})
    for target in english + japanese:
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    for page in sorted((ROOT / "docs").glob("[0-9][0-9]-*.md")):
        assert f"docs/{page.name}" in english and f"docs/ja/{page.name}" in japanese


def test_results_section_is_generated_and_identical_in_both(texts) -> None:
    generate = load_generate()
    for text in texts:
        assert text.count("<!-- results:begin -->") == 1 and text.count("<!-- results:end -->") == 1
        assert generate.render_readme(text) == text, "run `python docs/generate.py` to refresh the results"
    english, japanese = (re.search(r"<!-- results:begin -->.*?<!-- results:end -->", t, re.S).group() for t in texts)
    assert english == japanese


#: How a page would say of the reader's machine what was measured on another: "AVX2, as here", "on this busy
#: machine", "installed here" (en); "このマシン", "この 2 コア", "ここにインストール" (ja).
OF_THE_READERS_MACHINE = {
    "en": re.compile(r"\bas\s+here\b|, here,|: here\b|\bhere\s+it\b|\bhere, with\b|\binstalled\s+here\b|"
                     r"\b(this|these)\s+(busy\s+)?(machine|CPU|\d+\s+cores)\b"),
    "ja": re.compile(r"この(混み合った)?マシン|この ?\d+ ?コア|ここにインストール"),
}


def test_a_measured_number_names_its_machine_not_the_readers() -> None:
    """Numbers measured on the machine of the results, or of a page's output, are not said of "here" (README
    once said "AVX2, as here" on any machine), in the READMEs and the docs pages outside their generated output;
    what depends on the reader's CPU is printed by the commands (``python -m litquant.cpu``)."""
    docs = ROOT / "docs"
    pages = {"en": [README, *sorted(docs.glob("*.md"))], "ja": [README_JA, *sorted((docs / "ja").glob("*.md"))]}
    for language, paths in pages.items():
        for path in paths:
            found = [m.group() for m in OF_THE_READERS_MACHINE[language].finditer(FENCE.sub("", path.read_text()))]
            assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_a_missing_command_in_one_readme_is_detected(texts) -> None:
    english, japanese = texts
    dropped = japanese.replace("litquant info loggers\n", "", 1)
    assert code_blocks(dropped) != code_blocks(english)
    renamed = japanese.replace("## 信頼モデル", "### 信頼モデル", 1)
    assert headings(renamed) != headings(english)


def test_both_say_how_to_put_litquant_on_path_and_make_demo_prints_next_steps(texts) -> None:
    for text in texts:
        intro = text.split("\n## ", 1)[0]  # before the first section: read before any `litquant` command
        assert "`source .venv/bin/activate`" in intro and "`make shell`" in intro
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^shell: ", makefile, re.M)
    demo = re.search(r"^demo: .*?(?=^\S)", makefile, re.M | re.S).group()
    assert "source $(VENV)/bin/activate" in demo and "make shell" in demo
    assert re.search(r'@echo "  litquant \w+', demo)  # the next commands to try


def test_the_original_tutorial_is_named_and_linked(texts) -> None:
    for text in texts:
        assert "(https://github.com/Hikaru-13915/Pytorch-Lightning-Introduction)" in text
        assert not re.search(r"\bthe seed\b|seed's|seed-style|シードの", text, re.I)


def test_results_are_short_tables_from_the_json_files(texts) -> None:
    section = re.search(r"<!-- results:begin -->(.*?)<!-- results:end -->", texts[0], re.S).group(1)
    kinds = re.split(r"^(?=### CPU kind )", section, flags=re.M)[1:]
    assert kinds and all(len(kind.splitlines()) <= 66 for kind in kinds)  # six short tables per CPU kind at most
    for topic in ("Test accuracy", "int8 speed and size", "PyTorch int8 against ONNX Runtime int8", "Training speed",
                  "Time to 99.0% test accuracy", "Serving"):
        assert f"**{topic}**" in section
    assert "CPU, 2 cores with" in section and "(benchmarks/results/inference.avx2.json)" in section
    assert "### CPU kind `avx2` (AMD EPYC" in section  # each kind of CPU its own section, the CPU named
    assert not re.search(r"target|missed|\bmet\b", section)
    inference = json.loads((ROOT / "benchmarks" / "results" / "inference.avx2.json").read_text())
    size_mb = inference["models"]["ptq int8"]["size_bytes"] / 1e6
    assert re.search(rf"^\| ptq int8 \| {size_mb:.2f} \|", section, re.M)  # numbers come from the JSON


def test_no_committed_text_holds_a_path_of_the_machine_that_wrote_it() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    absolute = re.compile(r"(?<![\w.:/])/(?:home|tmp|work|root|Users|mnt|opt|var)/\w")
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix in {".md", ".json", ".py", ".txt", ".toml", ".yaml", ".csv"} or path.name == "Makefile":
            hits = [line for line in path.read_text(errors="replace").splitlines() if absolute.search(line)]
            assert not hits, f"{name}: {hits[0][:200]}"


def test_results_of_each_cpu_kind_get_their_own_section(tmp_path: Path) -> None:
    """A VNNI result beside the AVX2 ones: two sections, each from its own files only."""
    committed = ROOT / "benchmarks" / "results"
    for path in committed.glob("*.avx2.json"):
        shutil.copy(path, tmp_path / path.name)
    vnni = json.loads((committed / "inference.avx2.json").read_text())
    vnni["environment"]["cpu"] = {**vnni["environment"]["cpu"], "model": "AMD EPYC 9B45", "flags": ["avx512_vnni"]}
    vnni["models"]["ptq int8"]["size_bytes"] = 1_234_567
    (tmp_path / "inference.avx512-vnni.json").write_text(json.dumps(vnni))
    text = load_generate().results_markdown(tmp_path)
    avx2, vnni_section = text.split("### CPU kind `avx512-vnni` (AMD EPYC 9B45)")
    assert avx2.startswith("### CPU kind `avx2` (AMD EPYC)") and "avx512-vnni" not in avx2
    assert "| ptq int8 | 1.23 |" in vnni_section and "| ptq int8 | 1.23 |" not in avx2
    assert "inference.avx512-vnni.json" in vnni_section and ".avx2." not in vnni_section
    assert "**Training speed**" in avx2 and "**Training speed**" not in vnni_section  # never borrowed


def test_make_demo_says_how_every_command_finds_the_data_it_used(mnist_dir: Path, tmp_path: Path) -> None:
    """With the data beside the checkout, ``make demo`` ends with the ``export LITQUANT_DATA=...`` that points every
    other command at it, and ``make shell`` sets it; without it, neither says a word about it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    def dry_run(target: str, data: Path) -> str:
        return subprocess.run(["make", "-n", target, f"SHARED_DATA={data}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout

    assert f"export LITQUANT_DATA={mnist_dir}" in dry_run("demo", mnist_dir)
    assert f'LITQUANT_DATA="${{LITQUANT_DATA:-{mnist_dir}}}"' in dry_run("shell", mnist_dir)
    assert "LITQUANT_DATA" not in dry_run("demo", tmp_path) + dry_run("shell", tmp_path)


def test_every_image_a_readme_command_names_is_one_make_demo_wrote(texts, make_datamodule, tmp_path: Path) -> None:
    """A reader runs README's commands after ``make demo``: an image they name is one of the demo's samples
    (``demo/samples/``, one real test digit per class), never a file the reader would have to make first."""
    from litquant.apps.workflow import write_samples

    written = [path.relative_to(tmp_path).as_posix()
               for path in write_samples(make_datamodule(), tmp_path / "demo" / "samples")]
    for text in texts:
        named = {token for command in commands(text)
                 for token in re.findall(r"[\w./*-]+\.(?:png|jpe?g|bmp|gif|webp)\b", command)}
        assert named, "README names no image to try"
        for pattern in named:
            matches = [path for path in written if fnmatch.fnmatch(path, pattern)]
            assert len(matches) == 1, f"README names {pattern!r}: make demo writes {matches or 'no such file'}"
