"""Regenerate the outputs shown in ``docs/*.md`` and ``docs/ja/*.md`` and the results section of both READMEs.

Nothing printed in the docs is typed by hand. A page asks for generated content with HTML comments; the
block right after each comment is rewritten:

- ``<!-- run: COMMAND -->`` runs COMMAND and writes a ```` ```console ```` block holding ``$ COMMAND`` and what
  it printed, stdout and stderr together as a terminal shows them (warnings and log lines included, nothing
  left out).
  ``<!-- run[head=N]: COMMAND -->`` keeps the first N lines (then ``...``).
- ``<!-- include: PATH -->`` copies a file into a ```` ```python ```` block; ``from=REGEX`` / ``to=REGEX``
  (after the path) keep the lines from the first match of one to the first match of the other.

Every page is generated under one fixed profile, :data:`PROFILE` (``avx2``, one thread): the AVX2 kernels that
every x86-64 CPU litquant supports has, which litquant reads as the ``avx2`` kind (fp32 training, 7-bit int8), so
that a page shows the same on any CPU. The generator starts itself again with these variables when they are not
set (they must be in place before torch loads). ``docs/index.md`` says so, and what differs without them.

Each page runs its commands in order, in a fresh temporary folder holding a link to ``examples/`` (so a page
can train in one command and load the checkpoint in the next), with ``$LITQUANT_DATA`` set to the MNIST
folder (``--data_dir``, else ``$LITQUANT_TEST_DATA``, else ``shared/data`` beside the repository, else the
user's cache). ``python examples/X.py ARGS``, ``python -c CODE`` and ``litquant ARGS`` run inside this
process by default (the same code, imported once: generation takes a minute instead of several);
``--subprocess`` runs every command as a real process instead, to check that both print the same. Any other
command runs in ``bash``.

Every chapter exists in English (``docs/NN-*.md``) and in Japanese (``docs/ja/NN-*.md``). The two pages have
the same directive lines in the same order; the commands run once, from the English page, and the same
generated blocks are written into both, so the translation only carries its own prose.

``README.md`` and ``README.ja.md`` get short tables made from ``benchmarks/results/*.json`` (test accuracy, int8
speed and size, training speed) between ``<!-- results:begin -->`` and ``<!-- results:end -->``; the files
themselves hold the rest.

``--check`` compares instead of writing, and fails on a difference. The comparison masks, and only there:
durations (``12.3 ms``, ``4s``), version numbers (``2.6.6``, ``2.13.0+cpu``), the reason litquant's precision
line gives (it names the CPU's model; the precision chosen stays compared), in numbers with a decimal point
differences up to 0.02 absolute (float rounding differs between CPUs: fp32 kernels of another vector width sum
in another order, and a few small trainings amplify that), and the padding between table cells, which follows
those numbers' width; any other change fails.

Usage::

    python docs/generate.py                 # rewrite every page and the READMEs
    python docs/generate.py --check         # exit 1 and show a diff when a page is out of date
    python docs/generate.py docs/04-checkpoints.md --subprocess
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import logging
import os
import re
import runpy
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCS_JA = DOCS / "ja"  # the same chapters in Japanese: same commands, same outputs, translated prose
READMES = (ROOT / "README.md", ROOT / "README.ja.md")
RESULTS = ROOT / "benchmarks" / "results"
#: MNIST's training images litquant trains on by default (60,000 less the 5,000 held out for validation) and its
#: test images.
MNIST_TRAIN_IMAGES, MNIST_VAL_IMAGES, MNIST_TEST_IMAGES = 55_000, 5_000, 10_000
COLUMNS = 100  # terminal width the commands see
FLOAT_TOLERANCE = 0.02
#: The profile every page is generated under (see the module docstring), named in ``docs/index.md``.
PROFILE_NAME = "avx2"
PROFILE = {"OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
           "MKL_ENABLE_INSTRUCTIONS": "AVX2"}

DIRECTIVE = re.compile(r"^<!-- (run|include)(?:\[([^\]]*)\])?: (.+?) -->\n", re.MULTILINE)
FENCE = re.compile(r"```[^\n]*\n.*?^```\n", re.MULTILINE | re.DOTALL)
RESULTS_BLOCK = re.compile(r"(<!-- results:begin -->\n).*?(<!-- results:end -->)", re.DOTALL)


# -- running commands -------------------------------------------------------------------------------
def find_data_dir(explicit: str | None = None) -> Path | None:
    """The folder holding ``MNIST/raw/``: the one given, ``$LITQUANT_TEST_DATA``, ``shared/data`` beside
    the repository, or ``None`` (the commands then use the user's cache and download when needed)."""
    for candidate in (explicit, os.environ.get("LITQUANT_TEST_DATA"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw").is_dir():
            return Path(candidate).resolve()
    if explicit:
        raise SystemExit(f"no MNIST/raw/ folder in {explicit}: pass the folder that holds MNIST/")
    return None


@contextlib.contextmanager
def _environment(workdir: Path, data_dir: Path | None) -> Iterator[dict[str, str]]:
    """The environment every command sees; applied to this process too, for in-process runs."""
    import torch

    # the profile: one thread and AVX2 kernels, so that a page prints the same numbers on every machine (and
    # under the tests' one-thread workers); its CPU variables only act when set before torch loads (see main)
    changes = {"COLUMNS": str(COLUMNS), "PYTHONHASHSEED": "0", **PROFILE}
    if data_dir:
        changes["LITQUANT_DATA"] = str(data_dir)
    saved = {key: os.environ.get(key) for key in changes}
    cwd, threads = Path.cwd(), torch.get_num_threads()
    os.environ.update(changes)
    os.chdir(workdir)
    torch.set_num_threads(1)
    try:
        yield dict(os.environ)
    finally:
        torch.set_num_threads(threads)
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _in_process(argv: list[str]) -> str | None:
    """Run ``python examples/X.py``, ``python -c CODE`` or ``litquant ...`` here; ``None`` for other commands."""
    if argv[:1] == ["litquant"]:
        from litquant.cli import main

        target = lambda: sys.exit(main(argv[1:]))  # noqa: E731
    elif argv[:2] == ["python", "-c"] and len(argv) >= 3:
        target = lambda: exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})  # noqa: E731
    elif argv[:1] == ["python"] and len(argv) >= 2 and argv[1].endswith(".py"):
        target = lambda: runpy.run_path(argv[1], run_name="__main__")  # noqa: E731
    else:
        return None
    console, saved_argv = io.StringIO(), sys.argv
    sys.argv = argv[1:] if argv[0] == "python" else argv
    try:
        # What a terminal shows: stdout and stderr interleaved, log records included (their handlers hold the
        # stream they were created with), and each warning once per command as in a new process.
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console), \
                _log_handlers_writing_to(console), warnings.catch_warnings():
            warnings.showwarning = _show_warning  # as Python prints them, whoever handled warnings before
            sys.modules.pop("litquant.quiet", None)  # an example's `import litquant.quiet` quiets as in a new process
            target()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise RuntimeError(f"`{shlex.join(argv)}` exited with {exit_.code}:\n{console.getvalue()}") from None
    finally:
        sys.argv = saved_argv
    return console.getvalue()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _log_handlers_writing_to(stream: io.StringIO) -> Iterator[None]:
    """Point every logging handler that writes to a stream at ``stream`` for a while (a handler created during an
    earlier command holds that command's buffer, one created at import the real console)."""
    handlers = [handler for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
                if isinstance(logger, logging.Logger) for handler in logger.handlers
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
                and handler.stream is not None]  # a stream opened lazily is a file (torch's trace log), no console
    saved = [handler.stream for handler in handlers]  # setStream returns None when the stream is unchanged
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, original in zip(handlers, saved, strict=True):
            handler.setStream(original)


def run_command(command: str, env: dict[str, str], subprocess_only: bool) -> str:
    """What ``command`` prints on stdout and stderr, as a terminal shows them (run in the current folder)."""
    argv = shlex.split(command)
    if not subprocess_only and (output := _in_process(argv)) is not None:
        return output
    if argv[0] == "python":
        command = shlex.join([sys.executable, *argv[1:]])
    elif argv[0] == "litquant":
        command = shlex.join([sys.executable, "-m", "litquant.cli", *argv[1:]])
    result = subprocess.run(["bash", "-c", command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"`{command}` exited with {result.returncode}:\n{result.stdout[-3000:]}")
    return result.stdout


# -- rewriting pages ----------------------------------------------------------------------------------
def _options(items: list[str]) -> dict[str, str]:
    """``["from=X", "head=3"]`` -> ``{"from": "X", "head": "3"}``."""
    return dict(item.split("=", 1) for item in items)


def _console_block(command: str, output: str, options: dict[str, str]) -> str:
    lines = output.rstrip("\n").splitlines()
    if "head" in options and len(lines) > int(options["head"]):
        lines = [*lines[: int(options["head"])], "..."]
    body = "\n".join(line.rstrip() for line in lines)
    return f"```console\n$ {command}\n{body}\n```\n".replace("\n\n```\n", "\n```\n")


def _include_block(spec: str) -> str:
    path, *rest = shlex.split(spec)
    options = _options(rest)
    lines = (ROOT / path).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if re.search(options["from"], line)), None) \
        if "from" in options else 0
    if start is None:
        raise ValueError(f"include {path}: no line matches from={options['from']!r}")
    end = next((i for i, line in enumerate(lines[start:], start) if re.search(options["to"], line)), None) \
        if "to" in options else len(lines) - 1
    if end is None:
        raise ValueError(f"include {path}: no line matches to={options['to']!r}")
    return "```python\n" + "\n".join(lines[start : end + 1]) + "\n```\n"


def run_page(text: str, data_dir: Path | None, subprocess_only: bool = False) -> list[str]:
    """The generated block for each directive of the page, in order."""
    blocks = []
    with tempfile.TemporaryDirectory(prefix="litquant-docs-") as tmp:
        workdir = Path(tmp)
        (workdir / "examples").symlink_to(ROOT / "examples")
        with _environment(workdir, data_dir) as env:
            for match in DIRECTIVE.finditer(text):
                kind, options, argument = match.group(1), _options(shlex.split(match.group(2) or "")), match.group(3)
                if kind == "run":
                    start = time.perf_counter()
                    output = run_command(argument, env, subprocess_only).replace(str(workdir) + "/", "")
                    print(f"  {time.perf_counter() - start:6.1f} s  {argument}", file=sys.stderr)
                    blocks.append(_console_block(argument, output, options))
                else:
                    blocks.append(_include_block(argument))
    return blocks


def fill_page(text: str, blocks: Sequence[str]) -> str:
    """The page with the block after each directive replaced by ``blocks`` (one per directive, in order)."""
    matches = list(DIRECTIVE.finditer(text))
    if len(matches) != len(blocks):
        raise ValueError(f"{len(matches)} directives but {len(blocks)} generated blocks")
    out, position = [], 0
    for match, block in zip(matches, blocks, strict=True):
        out.append(text[position : match.end()])
        out.append(block)
        old = FENCE.match(text, match.end())  # the previous output, replaced
        position = old.end() if old else match.end()
    out.append(text[position:])
    return "".join(out)


def render_page(text: str, data_dir: Path | None, subprocess_only: bool = False) -> str:
    """The page with every generated block rewritten."""
    return fill_page(text, run_page(text, data_dir, subprocess_only))


def translation(page: Path) -> Path:
    """The Japanese page of an English chapter: ``docs/ja/<same name>``."""
    return DOCS_JA / page.name


def same_directives(english: str, translated: str) -> bool:
    """A translation runs and includes exactly what its English page does, in the same order."""
    return [m.group() for m in DIRECTIVE.finditer(english)] == [m.group() for m in DIRECTIVE.finditer(translated)]


def _load_results(results_dir: Path, name: str, kind: str) -> tuple[dict, str] | None:
    """``results/<name>.<kind>.json`` (else the quick run's ``<name>_quick.<kind>.json``) and its path relative
    to the root; ``kind`` is the CPU kind the benchmark ran on (``avx2``, ``avx512-vnni``...)."""
    for stem in (name, f"{name}_quick"):
        path = results_dir / f"{stem}.{kind}.json"
        if path.is_file():
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            return json.loads(path.read_text()), shown.as_posix()
    return None


def _cpu_kinds(results_dir: Path) -> list[str]:
    """The CPU kinds that results files are named with (``inference.avx2.json``: ``avx2``), sorted."""
    return sorted({path.name.split(".")[-2] for path in results_dir.glob("*.*.json")})


def _machine(results: dict) -> str:
    env = results["environment"]
    cpu = env["cpu"]
    flags = "/".join(flag.upper() for flag in cpu["flags"]) or "no AVX2"
    return f"{cpu['model']} CPU, {cpu['cores']} cores with {flags}, {env['torch_threads']} threads"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def _link(path: str) -> str:
    """A results file as a Markdown link named by its file name."""
    return f"[`{Path(path).name}`]({path})"


def _results_table(title: str, results: dict, link: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                   note: str = "") -> str:
    """``title (machine; link)note``, a blank line and the table: one results file's table in the READMEs."""
    return f"{title} ({_machine(results)}; {_link(link)}){note}\n\n" + _table(header, rows)


def _accuracy(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "tutorial_table", kind)
    inference = _load_results(results_dir, "inference", kind)
    if not found and not inference:
        return None
    rows, sources, tested = [], [], MNIST_TEST_IMAGES
    if found:  # the reproduction trains and tests on the whole dataset
        results, link = found
        summary, runs = results["summary"], results["runs"]
        rows.append(("fp32", f"{runs[0]['epochs']} epochs on {MNIST_TRAIN_IMAGES:,} images, mean of {len(runs)} "
                     "seeds", f"{summary['test_acc_final_mean']:.4f} (min {summary['test_acc_final_min']:.4f}, "
                     f"max {summary['test_acc_final_max']:.4f})"))
        sources.append(_link(link))
    if inference:
        results, link = inference
        settings = results["settings"]
        info, data = settings["checkpoint_info"], settings["checkpoint_info"]["data"]
        epochs = info["epoch"] + 1
        trained = data["train_size"] or MNIST_TRAIN_IMAGES + MNIST_VAL_IMAGES - data["val_size"]
        if found and settings["test_samples"] != tested:
            return None  # two test sets in one table would mislead: the files say it apart
        tested = settings["test_samples"]
        for name, model in results["models"].items():
            if name == "fp32 eager" or name.endswith("int8"):
                rows.append((name.removesuffix(" eager"), f"{epochs} epoch{'s' * (epochs > 1)} on {trained:,} images",
                             f"{model['test_acc']:.4f}"))
        sources.append(_link(link))
    return (f"**Test accuracy** on {tested:,} test images (" + ", ".join(sources) + ")\n\n"
            + _table(("model", "trained", "test accuracy"), rows))


def _int8(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "inference", kind)
    if not found:
        return None
    results, link = found
    threads, sizes = max(results["settings"]["threads"]), results["settings"]["batch_sizes"]
    small, large = min(sizes), max(sizes)
    rows = []
    for name, model in results["models"].items():
        one, many = model[f"t{threads}_b{small}"], model[f"t{threads}_b{large}"]
        rows.append((name, f"{model['size_bytes'] / 1e6:.2f}", f"{one['median_ms']:.2f}", f"{many['median_ms']:.1f}",
                     f"{many['speedup_vs_eager']:.1f}x"))
    return _results_table("**int8 speed and size**", results, link,
                          ("model", "file MB", f"batch {small} ms", f"batch {large} ms",
                           f"x fp32 eager at batch {large}"), rows)


def _training(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "training_throughput", kind)
    if not found:
        return None
    results, link = found
    summary = results["summary"]
    rows = [(name, f"{entry['samples_per_s']:.0f}", f"{entry['val_acc']:.3f}") for name, entry in summary.items()]
    overhead = _load_results(results_dir, "lightning_overhead", kind)
    note = ""
    if overhead:
        ratio, overhead_link = overhead[0]["checks"]["ratio_litquant"], overhead[1]
        note = (f"\nOne epoch with litquant's Trainer takes {ratio:.2f}x the time of a hand-written PyTorch loop "
                f"({_link(overhead_link)}).\n")
    samples = results["settings"]["train_samples"]
    return _results_table(f"**Training speed**, one epoch on {samples:,} images", results, link,
                          ("training", "samples/s", "val_acc after 1 epoch"), rows,
                          "; `tutorial-style` is the original tutorial's data pipeline and batch size, `litquant` "
                          "the default recipe") + note


def _time_to_accuracy(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "time_to_accuracy", kind)
    if not found:
        return None
    results, link = found
    goal = f"{results['settings']['target_test_acc']:.1%}"

    def seconds(run: dict) -> str:
        return f"{run['seconds_to_target']:.0f} s" if run["reached"] else f"not reached in {run['fit_s']:.0f} s"

    def ratios(name: str) -> str:
        found = results["speedup"].get(name)
        return f"{found['ratio']:.2f}x wall, {found['cpu_ratio']:.2f}x CPU" if found else "-"

    rows = [(f"`{name}`", f"batch {run['recipe']['batch_size']}, at most {run['recipe']['max_epochs']} epochs",
             seconds(run), f"{run['epochs_to_target']:g}" if run["reached"] else "-",
             f"{run['cpu_seconds_to_target']:.0f}" if run["reached"] else "-", ratios(name))
            for name, run in results["runs"].items()]
    return _results_table(f"**Time to {goal} test accuracy**, training on "
                          f"{results['settings']['train_samples']:,} images", results, link,
                          ("recipe", "settings", "wall time", "epochs", "CPU s", "faster than the tutorial's recipe"),
                          rows)


def _int8_runners(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "int8_runners", kind)
    if not found:
        return None
    results, link = found
    rows = [(f"{r['batch_size']}", f"{r['threads']}", f"{r['aot_over_onnxruntime']:.2f}x",
             f"{r['torch_compile_over_onnxruntime']:.2f}x") for r in results["ratios"]]
    return _results_table("**PyTorch int8 against ONNX Runtime int8**, p50 latency of the same PTQ model", results,
                          link, ("batch", "threads", "AOTInductor / ONNX Runtime", "torch.compile / ONNX Runtime"),
                          rows, "; below 1x PyTorch is faster")


def _serving(results_dir: Path, kind: str) -> str | None:
    found = _load_results(results_dir, "serve", kind)
    if not found:
        return None
    results, link = found
    rows = [(run["configuration"], f"{run['concurrency']}", f"{run['requests_per_s']:.0f}", f"{run['p50_ms']:.2f}",
             f"{run['p99_ms']:.1f}", f"{run['throughput_ratio']:.2f}x", f"{run['baseline']['p50_ms']:.2f}")
            for run in results["runs"]]
    return _results_table("**Serving** the int8 ONNX model with `litquant serve` on 127.0.0.1, against a minimal "
                          "in-process server measured in the same rounds", results, link,
                          ("litquant serve", "clients", "requests/s", "p50 ms", "p99 ms", "requests/s vs minimal",
                           "minimal p50 ms"), rows)


def results_markdown(results_dir: Path = RESULTS) -> str:
    """The short results tables for the READMEs, from ``results/*.<cpu kind>.json``, one section per CPU kind
    (results from different kinds of CPU are never mixed in a table): test accuracy, int8 speed and size,
    training speed, each naming the machine and linking its file (which says how it was measured)."""
    sections = []
    for kind in _cpu_kinds(results_dir):
        builders = (_accuracy, _int8, _int8_runners, _training, _time_to_accuracy, _serving)
        parts = [part for part in (build(results_dir, kind) for build in builders) if part]
        if parts:
            found = (_load_results(results_dir, name, kind) for name in ("inference", "training_throughput",
                                                                          "time_to_accuracy"))
            cpus = sorted({results["environment"]["cpu"]["model"] for results, _ in filter(None, found)})
            sections.append(f"### CPU kind `{kind}` ({', '.join(cpus)})\n\n" + "\n".join(parts))
    if not sections:
        return "_No benchmark results yet: run `make bench`._\n"
    return "\n".join(sections)


def render_readme(text: str) -> str:
    return RESULTS_BLOCK.sub(lambda m: m.group(1) + results_markdown() + m.group(2), text)


# -- comparing ------------------------------------------------------------------------------------------
_VOLATILE = [
    (re.compile(r"^(precision [^:\n]+): CPU .*(\(--trainer\.precision overrides\))$", re.MULTILINE), r"\1: <why> \2"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|seconds|it/s|s/it)\b"), "<duration>"),
    (re.compile(r"\b\d+\.\d+\.\d+(\.dev\d+)?(\+[\w.]+)?\b"), "<version>"),
]
_FLOAT = re.compile(r"-?\d+\.\d+")
_SPACES = re.compile(r"(?<=\S) {2,}")  # table padding, which follows the width of the numbers in the cells


def _masked(text: str) -> tuple[str, list[float]]:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", _FLOAT.sub("<float>", text)), [float(value) for value in _FLOAT.findall(text)]


def same_output(expected: str, actual: str, tolerance: float = FLOAT_TOLERANCE) -> bool:
    """True when the two texts differ only in masked parts (see the module docstring)."""
    skeleton_a, floats_a = _masked(expected)
    skeleton_b, floats_b = _masked(actual)
    return skeleton_a == skeleton_b and all(abs(a - b) <= tolerance for a, b in zip(floats_a, floats_b, strict=True))


def diff(expected: str, actual: str, name: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), name, "generated"))


def pages(selected: Sequence[str] = ()) -> list[Path]:
    return [Path(p).resolve() for p in selected] if selected else sorted(DOCS.glob("*.md"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*",
                        help="pages to process, each with its docs/ja/ translation (default: all, and the READMEs)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when something is stale")
    parser.add_argument("--subprocess", action="store_true", help="run every command as a separate process")
    parser.add_argument("--data_dir", help="folder holding MNIST/raw/ (default: see the module docstring)")
    parser.add_argument("--blocks", metavar="FILE", help="write the pages' generated blocks and how often each "
                        "output filter fired as JSON to FILE, and change no page (for tests/test_docs.py)")
    args = parser.parse_args(argv)
    if any(os.environ.get(name) != value for name, value in PROFILE.items()):  # before torch loads: start again
        command = [sys.executable, str(Path(__file__).resolve()), *(sys.argv[1:] if argv is None else argv)]
        return subprocess.run(command, env={**os.environ, **PROFILE}).returncode
    data_dir = find_data_dir(args.data_dir)
    if args.blocks:
        generated = {path.name: run_page(path.read_text(), data_dir, args.subprocess) for path in pages(args.pages)}
        from litquant.cpu import summary

        Path(args.blocks).write_text(json.dumps({"pages": generated,
                                                 "profile": {"variables": PROFILE, "cpu": summary()}}))
        return 0
    targets = pages(args.pages) + ([] if args.pages else list(READMES))
    stale = []

    def update(path: Path, text: str, new: str) -> None:
        if args.check:
            if not same_output(text, new):
                stale.append(path)
                print(diff(text, new, str(path.relative_to(ROOT))), file=sys.stderr)
        elif new != text:
            from litquant.files import write_text

            write_text(path, new)

    for path in targets:
        if not path.is_file():
            continue
        text = path.read_text()
        print(f"{'checking' if args.check else 'generating'} {path.relative_to(ROOT)}", file=sys.stderr)
        if path in READMES:
            update(path, text, render_readme(text))
            continue
        if path.parent == DOCS_JA:  # a Japanese page is generated with its English one
            path = DOCS / path.name
            text = path.read_text()
        blocks = run_page(text, data_dir, args.subprocess)
        update(path, text, fill_page(text, blocks))
        japanese = translation(path)
        if japanese.is_file():
            translated = japanese.read_text()
            if not same_directives(text, translated):
                raise SystemExit(f"{japanese.relative_to(ROOT)} does not run the same commands as "
                                 f"{path.relative_to(ROOT)}: keep their <!-- run/include --> lines identical")
            update(japanese, translated, fill_page(translated, blocks))
    if stale:
        print(f"out of date: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; "
              "run `python docs/generate.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
