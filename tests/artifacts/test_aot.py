"""The AOTInductor int8 runner on a real PT2E int8 program: build, output and int8-kernel checks, cache, trust."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest
import torch
from helpers import command_env, run_litquant, run_python
from quantization_helpers import small_datamodule

from litquant.artifacts.aot import (
    CompiledMismatchError,
    _sources,
    _threads_for,
    aot_runner_for_file,
    direct_call,
    package_path,
)
from litquant.artifacts.inductor import INT8_GEMM_KERNELS, Int8FallbackError, check_int8_kernels, check_kernel_counts
from litquant.artifacts.loading import load_artifact, read_description
from litquant.artifacts.saving import save_pt2
from litquant.quantization import QuantizeConfig, quantize

DATA = Path(__file__).resolve().parents[1] / "data"
#: The layers of the tests' PTQ model (litquant's Net: conv1, conv2, fc1, fc2), every one int8, as
#: ``check_int8_kernels`` counts them in its exported program (checked on the real program below).
PTQ_LAYERS = {"conv_layers": 2, "linear_layers": 2, "fp32_conv_layers": 0, "fp32_linear_layers": 0}
#: The C++ that AOTInductor generated for that model on each CPU kind captured (``tests/data/README.md``).
CAPTURED = sorted(DATA.glob("cpu-*/aot-ptq-batch*.cpp"))


def with_fp32_linear(source: str) -> str:
    """``source`` with its int8 linear kernels replaced by the fp32 ones inductor would generate instead: the
    GEMM template's fp32 signature, ATen's fp32 matmul in place of oneDNN's int8 linear."""
    source = source.replace("const uint8_t* X, const int8_t* W", "const float* X, const float* W")
    return source.replace("aoti_torch_cpu__qlinear_pointwise_tensor(", "aoti_torch_cpu_addmm(") \
        .replace("aoti_torch_cpu__qlinear_pointwise_binary_tensor(", "aoti_torch_cpu_addmm(")


def with_fp32_kernels(source: str) -> str:
    """``source`` with every int8 kernel replaced by its fp32 counterpart (convolutions too)."""
    return with_fp32_linear(source).replace("aoti_torch_cpu__qconv_pointwise_tensor(", "aoti_torch_cpu_convolution(")


def test_every_cpu_kind_has_captured_aot_code() -> None:
    assert {path.parent.name for path in CAPTURED} >= {"cpu-avx2", "cpu-avx512-vnni", "cpu-amx"}
    assert all({path.name for path in CAPTURED if path.parent == kind.parent} ==
               {"aot-ptq-batch1.cpp", "aot-ptq-batch256.cpp"} for kind in CAPTURED)


@pytest.mark.parametrize("source", CAPTURED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_int8_code_generated_on_each_cpu_kind_passes_the_check(source: Path) -> None:
    counts = check_kernel_counts(PTQ_LAYERS, source.read_text())
    assert counts["int8_conv_calls"] >= 2 and counts["int8_linear_kernels"] >= 2


@pytest.mark.parametrize("source", CAPTURED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_same_code_with_fp32_kernels_fails_the_check(source: Path) -> None:
    text = source.read_text()
    for fp32 in (with_fp32_linear(text), with_fp32_kernels(text)):
        assert fp32 != text
        with pytest.raises(Int8FallbackError):
            check_kernel_counts(PTQ_LAYERS, fp32)
    # one linear layer's GEMM kernel in fp32, the other still int8, is enough to fail
    names = sorted(set(INT8_GEMM_KERNELS.findall(text)))
    if names:
        signature = rf"(void\s+{names[0]}\s*\()const uint8_t\* X, const int8_t\* W"
        one_fp32 = re.sub(signature, r"\1const float* X, const float* W", text)
        with pytest.raises(Int8FallbackError, match="does not run int8 kernels for every layer"):
            check_kernel_counts(PTQ_LAYERS, one_fp32)


@pytest.fixture(scope="module")
def int8_pt2(tiny_checkpoint: Path, tmp_path_factory, mnist_dir: Path) -> Path:
    """A real PT2E post-training int8 ``.pt2`` of a model trained for one small epoch."""
    root = tmp_path_factory.mktemp("aot")
    return quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), root / "out",
                    config=QuantizeConfig(calibration_batches=4), progress=False)


@pytest.fixture(scope="module")
def built(int8_pt2: Path, tmp_path_factory) -> tuple[Path, object]:
    """One runner for batch 2, built once (max_autotune off: the build is what is tested, not its speed)."""
    cache = tmp_path_factory.mktemp("aot-cache")
    run = aot_runner_for_file(int8_pt2, (2,), cache, max_autotune=False, eager=True)
    return cache, run


def _exported(int8_pt2: Path):
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401

    return torch.export.load(int8_pt2)


def test_runner_matches_the_exported_graph_for_any_batch(built, int8_pt2: Path) -> None:
    _, run = built
    program = _exported(int8_pt2)
    x = torch.randn(5, 1, 28, 28)  # chunks of 2, 2 and a padded 1
    got, expected = run(x), program.module()(x)
    assert got.shape == (5, 10)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert (got - expected).abs().max() < 0.05 * expected.abs().max() + 1e-3


def test_package_runs_int8_kernels_and_is_private(built, int8_pt2: Path) -> None:
    cache, _ = built
    package = next(cache.glob("*/batch2.pt2"))
    counts = check_int8_kernels(_exported(int8_pt2), _sources(package))
    assert {key: counts[key] for key in PTQ_LAYERS} == PTQ_LAYERS  # the layers the captured code is checked for
    assert counts["int8_conv_calls"] >= counts["conv_layers"] and counts["int8_linear_kernels"] >= 2
    assert oct(package.stat().st_mode & 0o777) == "0o600"
    from litquant.cpu import cpu_info

    # the artifact records the CPU it was made on
    assert read_description(int8_pt2).extra["cpu"] == cpu_info().as_dict()


def test_the_runner_calls_the_package_directly_with_the_same_result(built) -> None:
    """The runner skips the package's per-call argument handling (its call spec parsed on every call), not its work."""
    cache, _ = built
    package = torch._inductor.aoti_load_package(str(next(cache.glob("*/batch2.pt2"))))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(direct_call(package)(x.clone()), package(x))


def test_batch_one_runs_on_one_thread_and_the_setting_is_restored(built) -> None:
    _, run = built
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _threads_for(1):
            assert torch.get_num_threads() == 1
        with _threads_for(2):
            assert torch.get_num_threads() == 2
        assert run(torch.randn(1, 1, 28, 28)).shape == (1, 10)  # padded up to the batch-2 package, on one thread
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_fp32_fallback_is_an_error(built, int8_pt2: Path) -> None:
    cache, _ = built
    sources = _sources(next(cache.glob("*/batch2.pt2")))
    fallen_back = sources.replace("aoti_torch_cpu__qconv_pointwise_tensor(", "aoti_torch_cpu_convolution(")
    with pytest.raises(Int8FallbackError, match="fell back to fp32"):
        check_int8_kernels(_exported(int8_pt2), fallen_back)


def test_second_runner_loads_from_the_cache_and_checks_it(built, int8_pt2: Path) -> None:
    cache, _ = built
    start = time.perf_counter()
    aot_runner_for_file(int8_pt2, (2,), cache, eager=True)  # max_autotune differs: the key is the file, not options
    assert time.perf_counter() - start < 10, "the cached package should load without compiling"


def test_cached_package_of_another_model_fails_loudly(built, int8_pt2: Path, tmp_path: Path) -> None:
    cache, _ = built
    # another model (the last layer's biases changed), with this model's package filed under its key
    program = _exported(int8_pt2)
    with torch.no_grad():
        program.state_dict["fc2.bias"].add_(torch.arange(10.0) * 10)
    other = tmp_path / "other.pt2"
    save_pt2(program, other, read_description(int8_pt2))  # a described artifact, as litquant writes them

    target = package_path(cache, hashlib.sha256(other.read_bytes()).hexdigest(), 2)
    target.parent.mkdir(mode=0o700)
    built_package = next(cache.glob("*/batch2.pt2"))
    target.write_bytes(built_package.read_bytes())
    target.with_suffix(".json").write_bytes(built_package.with_suffix(".json").read_bytes())  # its record too
    os.chmod(target, 0o600)
    with pytest.raises(CompiledMismatchError, match="built for another model or batch size"):
        aot_runner_for_file(other, (2,), cache, eager=True)
    # and with a record rewritten to name this model, the package's outputs give it away before any use
    record = json.loads(target.with_suffix(".json").read_text())
    target.with_suffix(".json").write_text(json.dumps({**record, "program_sha256": hashlib.sha256(
        other.read_bytes()).hexdigest()}))
    with pytest.raises(CompiledMismatchError, match="differ from the exported graph"):
        aot_runner_for_file(other, (2,), cache, eager=True)


def test_package_writable_by_others_is_refused(built, int8_pt2: Path) -> None:
    cache, _ = built
    package = package_path(cache, hashlib.sha256(int8_pt2.read_bytes()).hexdigest(), 2)  # this model's package
    os.chmod(package, 0o622)
    try:
        with pytest.raises(PermissionError, match="writable by others"):
            aot_runner_for_file(int8_pt2, (2,), cache, eager=True)
    finally:
        os.chmod(package, 0o600)


@pytest.fixture(scope="module")
def aot_loaded(int8_pt2: Path, tmp_path_factory) -> tuple[Path, object]:
    """``load_artifact(runner="aot")`` with a private ``$LITQUANT_CACHE``, built for batch 4 (one build)."""
    cache = tmp_path_factory.mktemp("litquant-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITQUANT_CACHE", str(cache))
        model = load_artifact(int8_pt2, runner="aot", batch_sizes=(4,), progress=False)
        model(torch.zeros(4, 1, 28, 28))  # builds the package
    return cache, model


def test_load_artifact_aot_predicts_as_the_exported_graph(aot_loaded, int8_pt2: Path, mnist_dir: Path) -> None:
    cache, model = aot_loaded
    assert [p.name for p in (cache / "aot").glob("*/*.pt2")] == ["batch4.pt2"]
    assert any((cache / "inductor").rglob("*.cpp"))  # inductor's own cache built in the private one too
    program = _exported(int8_pt2)
    batches = [images for images, _ in small_datamodule(mnist_dir).normalized_batches("test", 4, limit=3)]
    for batch in [*batches, batches[0][:3], torch.cat(batches)[:9]]:  # exact, padded up, chunked
        got, expected = model(batch), program.module()(batch)
        assert torch.equal(got.argmax(1), expected.argmax(1))
        assert (got - expected).abs().max() < 0.05 * expected.abs().max() + 1e-3


def test_load_artifact_aot_in_a_fresh_process_uses_the_cache(aot_loaded, int8_pt2: Path, monkeypatch) -> None:
    cache, _ = aot_loaded
    package = next((cache / "aot").glob("*/batch4.pt2"))
    built = package.stat().st_mtime_ns
    monkeypatch.setenv("LITQUANT_CACHE", str(cache))
    # a build in the child would exit it with "compiled again": a fresh process only loads the cached package
    code = ("import sys, torch\n"
            "torch._inductor.aoti_compile_and_package = lambda *a, **k: sys.exit('compiled again')\n"
            "from litquant.artifacts.loading import load_artifact\n"
            "model = load_artifact(sys.argv[1], runner='aot', batch_sizes=(4,))\n"
            "print(model(torch.zeros(4, 1, 28, 28)).shape)\n")
    result = run_python("-c", code, str(int8_pt2))
    assert result.stdout.split()[-1] == "10])"
    assert package.stat().st_mtime_ns == built


def test_bench_runs_the_aot_runner(aot_loaded, int8_pt2: Path, tmp_path: Path, monkeypatch) -> None:
    cache, _ = aot_loaded
    monkeypatch.setenv("LITQUANT_CACHE", str(cache))
    out = tmp_path / "bench.json"
    result = run_litquant("bench", str(int8_pt2), "--runner", "aot", "--batch_sizes", "4", "--threads", "1",
                          "--rounds", "2", "--calls", "3", "--out", str(out))
    assert "wrote" in result.stdout
    results = json.loads(out.read_text())
    assert results["runner"] == "aot"
    assert [(r["batch_size"], r["threads"]) for r in results["results"]] == [(4, 1)]
    cold = results["cold_start"]["models"][str(int8_pt2)]
    assert 0 < cold["load_s"] <= cold["cold_start_s"]
    assert [p.name for p in (cache / "aot").glob("*/*.pt2")] == ["batch4.pt2"]  # nothing new built


def test_a_layer_left_in_fp32_on_purpose_passes_the_int8_check(tiny_checkpoint: Path, tmp_path: Path,
                                                               mnist_dir: Path) -> None:
    """A model quantized with ``fp32_layers`` (what ``--method auto`` keeps for the stress case) runs that layer
    with an fp32 kernel by design: the check counts it as an fp32 layer and still requires int8 for the others."""
    path = quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path,
                    config=QuantizeConfig(calibration_batches=2, fp32_layers=("conv2",)), progress=False)
    model = load_artifact(path, progress=False)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    (counts,) = model._runner.compilations
    assert counts["fp32_conv_layers"] == 1 and counts["int8_conv_calls"] >= counts["conv_layers"] == 1


def test_tampered_cached_package_is_rebuilt_quietly_not_loaded(built, int8_pt2: Path, tmp_path: Path,
                                                               capfd) -> None:
    """A cached package whose bytes changed after it was built (edited, truncated) does not match the sha256
    recorded when it was built: it is rebuilt, with a warning, and its native code is never loaded. The build
    (with max_autotune) prints nothing else: no autotuning tables, no warnings about torch's internals."""
    import shutil
    import zipfile

    cache = tmp_path / "cache"
    shutil.copytree(built[0], cache)
    package = package_path(cache, hashlib.sha256(int8_pt2.read_bytes()).hexdigest(), 2)
    original = zipfile.ZipFile(package)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(tampered, "w") as archive:  # still a valid package, that torch would load and run
        for info in original.infolist():
            data = original.read(info)
            archive.writestr(info, data + b"\n// changed\n" if info.filename.endswith(".cpp") else data)
    os.replace(tampered, package)
    os.chmod(package, 0o600)
    loaded = []
    real_load = torch._inductor.aoti_load_package
    torch._inductor.aoti_load_package = lambda source, *a, **k: loaded.append(source) or real_load(source, *a, **k)
    try:
        capfd.readouterr()
        with pytest.warns(UserWarning) as caught:
            aot_runner_for_file(int8_pt2, (2,), cache, eager=True)
    finally:
        torch._inductor.aoti_load_package = real_load
    assert [str(w.message).split(": ", 1)[-1] for w in caught] == [
        "the cached package does not match the sha256 recorded when it was built; rebuilding it"]
    printed = capfd.readouterr()
    assert printed.out == printed.err == ""
    record = json.loads(package.with_suffix(".json").read_text())
    assert record["package_sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    assert b"// changed" not in package.read_bytes()
    assert len(loaded) == 1  # the rebuilt package only


def test_cache_folder_that_is_a_file_is_one_line_saying_what_to_do(int8_pt2: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(OSError, match=r"cannot create the AOTInductor cache folder .*set LITQUANT_CACHE to a folder"):
        aot_runner_for_file(int8_pt2, (2,), tmp_path / "cache" / "aot", eager=True)


def test_compile_runner_builds_in_the_private_cache_and_refuses_a_foreign_one(int8_pt2: Path,
                                                                              tmp_path: Path) -> None:
    """The default runner's native code is compiled into, and loaded from, ``$LITQUANT_CACHE/inductor``, never
    inductor's default ``$TMPDIR/torchinductor_$USER`` (which another local user can create first); a cache folder
    someone else owns, or anyone may write, is refused in one line (exit 2) before anything is built there."""
    import numpy as np
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    env = command_env(tmp_path, LITQUANT_CACHE=str(cache), TMPDIR=str(tmp))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    predict = ("predict", "--model", str(int8_pt2), "--runner", "compile", str(image))
    run_litquant(*predict, env=env)
    # importing Lightning (torch._dynamo) creates the default folder, empty; nothing is built or read there
    assert not [path for path in tmp.rglob("*") if not path.is_dir()]
    assert any((cache / "inductor").rglob("*.so")) and any((cache / "inductor").rglob("*.cpp"))
    assert stat.S_IMODE((cache / "inductor").stat().st_mode) == 0o700

    def refusal() -> str:
        result = run_litquant(*predict, env=env, check=False)
        lines = [line for line in result.stderr.splitlines() if line.startswith("litquant: error")]
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        return lines[0]

    os.chown(cache / "inductor", 65534, 65534)
    assert f"{cache / 'inductor'}: not owned by this user (uid 65534); refusing to build or load" in refusal()
    os.chown(cache / "inductor", os.getuid(), os.getgid())
    os.chmod(cache / "inductor", 0o777)
    assert f"{cache / 'inductor'}: writable by others" in refusal()
