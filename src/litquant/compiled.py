"""A compiled int8 runner without per-call overhead: one AOTInductor package per static batch size, cached on disk.

``torch.compile`` pays dynamo's guards and re-creates oneDNN primitives on every call, which is what a batch of
one loses on. AOTInductor compiles the exported graph ahead of time into a native package that runs it directly.

Every package is compiled under ``torch.no_grad()`` (outside it AOTInductor silently skips freezing and runs
fp32, dequantizing the weights on every call), with ``freezing`` and ``max_autotune`` scoped to the build, for
one static batch size (a dynamic-batch package can return wrong answers with no error). After compiling,
the generated code must call int8 kernels for every convolution and no fp32 convolution or matmul
(:class:`Int8FallbackError` otherwise), and its outputs must match the exported graph's
(:class:`CompiledMismatchError` otherwise); the output check runs again whenever a cached package is loaded.

**Trust.** A native package runs code, so only packages litquant built itself are loaded: from its own cache
folder (``$LITQUANT_CACHE/aot``, else ``~/.cache/litquant/aot``), created private to the user, at a name
derived from the sha256 of the checked ``.pt2``, the torch version, the CPU kind and the batch size; a cached
file or folder of the cache writable by others or owned by someone else is refused. Each package's record
(``batch<N>.json`` beside it) holds the sha256 of the package's bytes when it was built, and the model's sha256
and batch size; a package whose bytes do not match (edited, truncated, or left without a record by a crash) is
rebuilt, with a warning, never loaded, and one recorded for another model or batch size is refused. The bytes
checked are the bytes loaded. The ``.pt2`` stays the shipped file. Inductor's own cache (the kernels it
compiles and loads, for these packages and for the ``torch.compile`` runner) lives in the same private cache,
checked the same way: see :mod:`litquant.private_cache`.

Example::

    from litquant.compiled import aot_runner_for_file

    run = aot_runner_for_file("out/ptq.pt2", batch_sizes=(1, 256))   # builds on first use, then from the cache
    logits = run(images)                                            # any batch: padded up or chunked
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch.export import ExportedProgram

from litquant.cpu import cpu_info
from litquant.files import atomic_path, write_json
from litquant.private_cache import cache_base, check_private, private_dir, private_inductor_cache

__all__ = ["CompiledMismatchError", "Int8FallbackError", "aot_runner", "aot_runner_for_file", "cache_root",
           "check_int8_kernels", "inductor_build", "package_path"]

#: Calls of fp32 convolution / matmul kernels in inductor's generated code (AOTInductor's C++ wrapper or
#: ``torch.compile``'s Python wrapper): an int8 graph that contains one fell back to fp32 for that layer.
FP32_KERNELS = re.compile(r"aoti_torch_cpu_(convolution|_convolution_pointwise\w*|addmm|mm|bmm|_linear_pointwise\w*|"
                          r"_mkl_linear|mkldnn_\w*convolution\w*)\b|extern_kernels\.(convolution|addmm|mm|bmm)\b|"
                          r"torch\.ops\.(aten\.(convolution|addmm|mm)|mkldnn\.\w*(convolution|linear)\w*)\b")
INT8_CONV = re.compile(r"aoti_torch_cpu__qconv\w*\(|torch\.ops\.onednn\.qconv\w*")
INT8_LINEAR = re.compile(r"aoti_torch_cpu__qlinear\w*\(|CppMicroGemm\w*|torch\.ops\.onednn\.qlinear\w*")


class Int8FallbackError(RuntimeError):
    """The compiled int8 model runs fp32 kernels for some layers (a silent several-fold slowdown)."""


class CompiledMismatchError(RuntimeError):
    """The compiled model's outputs differ from the exported graph's."""


def cache_root() -> Path:
    """``$LITQUANT_CACHE/aot``, else ``~/.cache/litquant/aot``."""
    return cache_base() / "aot"


def package_path(cache_dir: Path, sha256: str, batch_size: int) -> Path:
    """Where the package of a ``.pt2`` (by sha256) for one batch size lives, for this torch and CPU kind."""
    key = f"{sha256}-torch{torch.__version__}-{cpu_info().isa}".replace("+", "_")
    return cache_dir / key / f"batch{batch_size}.pt2"


def _verified_package(target: Path, program_sha256: str, batch_size: int) -> bytes | None:
    """The cached package's bytes if they match the sha256 its record holds; ``None`` (with a warning if a package
    is there) when it must be built: missing, without a record, or changed since it was built. A record of another
    model or batch size (a package moved under this name) is an error."""
    if not target.is_file():
        return None
    check_private([target, target.parent, target.parent.parent])  # the package and the folders above it
    data = target.read_bytes()
    try:
        record = json.loads(target.with_suffix(".json").read_text())
        recorded = record.get("package_sha256")
    except (OSError, ValueError, AttributeError):
        record, recorded = {}, None
    if recorded is not None and (record.get("program_sha256"), record.get("batch_size")) != (program_sha256,
                                                                                             batch_size):
        raise CompiledMismatchError(f"{target}: the cached package was built for another model or batch size "
                                    "(moved here from elsewhere); refusing to load it (delete the folder to rebuild)")
    if recorded == hashlib.sha256(data).hexdigest():
        return data
    why = "has no record of its sha256" if recorded is None else "does not match the sha256 recorded when it was built"
    warnings.warn(f"{target}: the cached package {why}; rebuilding it", stacklevel=3)
    return None


def _sources(package: Path | bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(package) if isinstance(package, bytes) else package) as archive:
        return "\n".join(archive.read(name).decode(errors="replace") for name in archive.namelist()
                         if name.endswith(".cpp"))


def _reads_int8_weight(node: torch.fx.Node) -> bool:
    """Whether a conv/linear node's weight comes from a per-channel dequantize node (through at most a few
    reshapes): a layer inductor lowers to an int8 kernel. A layer left in fp32 (``fp32_layers``) reads its fp32
    weight directly, and one with per-tensor int8 weights (``per_channel=False``) has no int8 lowering on CPU:
    both run fp32 kernels by design."""
    for weight in node.args[1:3]:
        for _ in range(3):
            if not isinstance(weight, torch.fx.Node) or weight.op != "call_function":
                break
            if "dequantize" in str(weight.target):
                return "per_channel" in str(weight.target)
            weight = weight.args[0] if weight.args else None
    return False


def _layer_counts(program: ExportedProgram) -> dict[str, int]:
    """Convolution and linear layers of ``program``, int8 (weights dequantized) and fp32 apart."""
    counts = {"conv_layers": 0, "linear_layers": 0, "fp32_conv_layers": 0, "fp32_linear_layers": 0}
    for node in program.graph.nodes:
        name = str(node.target) if node.op == "call_function" else ""
        kind = ("conv" if "aten.conv" in name else
                "linear" if "aten.linear" in name or "aten.addmm" in name or "aten.mm" in name else None)
        if kind:
            counts[f"{kind}_layers" if _reads_int8_weight(node) else f"fp32_{kind}_layers"] += 1
    return counts


def check_int8_kernels(program: ExportedProgram, sources: str) -> dict[str, int]:
    """Raise :class:`Int8FallbackError` unless the generated ``sources`` run every int8 convolution of
    ``program`` with an int8 kernel, its int8 linear layers with int8 kernels too, and (when the program leaves no
    layer in fp32) no fp32 convolution or matmul at all. Returns the counts found."""
    found = _layer_counts(program)
    found.update(int8_conv_calls=len(INT8_CONV.findall(sources)), int8_linear_kernels=len(INT8_LINEAR.findall(sources)))
    fp32 = sorted({match.group(0) for match in FP32_KERNELS.finditer(sources)})
    if fp32 and not found["fp32_conv_layers"] + found["fp32_linear_layers"]:  # else the int8 counts below decide
        raise Int8FallbackError(f"the compiled int8 model fell back to fp32 kernels ({', '.join(fp32)}); "
                                "the graph is not int8 end to end")
    if found["int8_conv_calls"] < found["conv_layers"] or (found["linear_layers"] and not found["int8_linear_kernels"]):
        raise Int8FallbackError(f"the compiled int8 model does not run int8 kernels for every layer ({found})")
    return found


def _check_outputs(program: ExportedProgram, run: Callable[[torch.Tensor], torch.Tensor], batch_size: int,
                   where: Path) -> None:
    generator = torch.Generator().manual_seed(batch_size)
    x = torch.randn(batch_size, 1, 28, 28, generator=generator)
    with torch.no_grad():
        expected = program.module()(x)
        got = run(x)
    error = float((got - expected).abs().max())
    bound = 0.05 * float(expected.abs().max()) + 1e-3
    agree = float((got.argmax(1) == expected.argmax(1)).float().mean())
    if got.shape != expected.shape or not error <= bound or agree < 0.95:
        raise CompiledMismatchError(f"{where}: compiled outputs differ from the exported graph's (max abs error "
                                    f"{error:.4g} > {bound:.4g} or top-1 agreement {agree:.3f}); "
                                    "delete the package to rebuild, or run without the compiled runner")


#: Warnings torch raises about its own code while inductor compiles (nothing a user can act on).
BUILD_NOISE = (r"To copy construct from a tensor", r"TypedStorage is deprecated")


@contextlib.contextmanager
def inductor_build() -> Iterator[None]:
    """What every inductor compilation of litquant runs in (an AOTInductor package, or ``torch.compile``'s graph):
    inductor's cache in litquant's private, checked folder (:func:`~litquant.private_cache.private_inductor_cache`),
    no autotuning tables on stderr (unless asked for with inductor's environment variables) and no
    :data:`BUILD_NOISE` warnings."""
    quiet = {name: value for name, variable, value in (
        ("autotune_num_choices_displayed", "TORCHINDUCTOR_AUTOTUNE_NUM_CHOICES_DISPLAYED", 0),
        ("max_autotune_report_choices_stats", "TORCHINDUCTOR_MAX_AUTOTUNE_REPORT_CHOICES_STATS", False))
        if variable not in os.environ}
    with private_inductor_cache(), warnings.catch_warnings(), torch._inductor.config.patch(quiet):
        for message in BUILD_NOISE:
            warnings.filterwarnings("ignore", message, UserWarning)
        yield


def _build(program: ExportedProgram, batch_size: int, target: Path, max_autotune: bool,
           check_int8: bool = True) -> tuple[bytes, dict[str, int] | None]:
    """Build the package for ``batch_size`` and write it to ``target`` atomically; its bytes and int8 counts."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  registers int8 lowerings

    example = (torch.randn(batch_size, 1, 28, 28),)
    static = torch.export.export(program.module(), example)  # no dynamic shapes: one batch size
    private_dir(target.parent, "AOTInductor cache folder")
    with atomic_path(target) as tmp, torch.no_grad(), inductor_build(), \
            torch._inductor.config.patch(freezing=True, max_autotune=max_autotune):
        built = Path(torch._inductor.aoti_compile_and_package(static, package_path=str(tmp.with_suffix(".pt2"))))
        data = built.read_bytes()
        kernels = check_int8_kernels(program, _sources(data)) if check_int8 else None
        if built != tmp:
            built.replace(tmp)
        os.chmod(tmp, 0o600)  # native code: private to the user who built it
    return data, kernels


def aot_runner(program: ExportedProgram, batch_sizes: Sequence[int] = (1, 8, 32, 64, 128, 256),
               cache_dir: str | os.PathLike | None = None, *, sha256: str | None = None, max_autotune: bool = True,
               eager: bool = False, progress: bool = False,
               check_int8: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable running an int8 ``program`` through AOTInductor packages, one per batch size in
    ``batch_sizes``: smaller inputs are padded up to the next size, larger ones run in chunks of the largest.

    Args:
        program: the exported program of a checked ``.pt2``.
        batch_sizes: the static batch sizes compiled.
        cache_dir: the package cache (default :func:`cache_root`).
        sha256: the ``.pt2`` file's sha256 (the cache key); ``None`` hashes the program's serialized bytes.
        max_autotune: let inductor benchmark kernel choices while building (slower build, faster runs).
        eager: build every batch size now instead of on first use.
        progress: print a note to stderr before each build.
        check_int8: check that the generated code runs int8 kernels (:func:`check_int8_kernels`); ``False``
            for an fp32 program (its outputs are still checked).
    """
    sizes = sorted(set(batch_sizes))
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    if sha256 is None:
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    loaded: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}

    def runner_for(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
        if size in loaded:
            return loaded[size]
        target = package_path(cache, sha256, size)
        data = _verified_package(target, sha256, size)
        if data is None:
            if progress:
                print(f"compiling the {'int8' if check_int8 else 'fp32'} model with AOTInductor for batch {size} "
                      "(takes a minute, cached)...",
                      file=sys.stderr, flush=True)
            with torch.inference_mode(False):
                data, kernels = _build(program, size, target, max_autotune, check_int8)
            write_json(target.with_suffix(".json"), {"program_sha256": sha256, "batch_size": size,
                                                     "cpu": cpu_info().as_dict(),
                                                     "torch": torch.__version__, "int8_kernels": kernels,
                                                     "max_autotune": max_autotune,
                                                     "package_sha256": hashlib.sha256(data).hexdigest()})
        package = torch._inductor.aoti_load_package(io.BytesIO(data))  # the bytes checked, not the path again
        _check_outputs(program, package, size, target)
        loaded[size] = package
        return package

    if eager:
        for size in sizes:
            runner_for(size)

    def run(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        with torch.no_grad():
            for chunk in x.split(sizes[-1]):
                size = next(b for b in sizes if b >= len(chunk))
                padded = chunk if size == len(chunk) else \
                    torch.nn.functional.pad(chunk, (0, 0, 0, 0, 0, 0, 0, size - len(chunk)))
                outputs.append(runner_for(size)(padded.contiguous())[: len(chunk)])
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    return run


def aot_runner_for_file(path: str | os.PathLike, batch_sizes: Sequence[int] = (1, 8, 32, 64, 128, 256),
                        cache_dir: str | os.PathLike | None = None,
                        **options) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`aot_runner` for a ``.pt2`` file: its bytes are read once, checked as ``load_artifact`` checks them
    (nothing pickled or native), hashed for the cache key and loaded from that same buffer."""
    from litquant.artifacts import _read_file, load_program

    data = _read_file(Path(path))
    program, _ = load_program(path, data)
    return aot_runner(program, batch_sizes, cache_dir, sha256=hashlib.sha256(data).hexdigest(), **options)
