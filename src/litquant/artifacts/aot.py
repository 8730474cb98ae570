"""A compiled int8 runner without per-call overhead: one AOTInductor package per static batch size, cached on disk.

``torch.compile`` pays dynamo's guards and re-creates oneDNN primitives on every call, which is what a batch of
one loses on. AOTInductor compiles the exported graph ahead of time into a native package that runs it directly.

Every package is compiled under ``torch.no_grad()`` (outside it AOTInductor silently skips freezing and runs
fp32, dequantizing the weights on every call), with ``freezing`` and ``max_autotune`` scoped to the build, for
one static batch size (a dynamic-batch package can return wrong answers with no error). After compiling,
the generated code must call int8 kernels for every convolution and no fp32 convolution or matmul
(:class:`~litquant.artifacts.inductor.Int8FallbackError` otherwise), and its outputs must match the exported graph's
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
checked the same way: see :mod:`litquant.artifacts.private_cache`.

Example::

    from litquant.artifacts.aot import aot_runner_for_file

    run = aot_runner_for_file("out/ptq.pt2", batch_sizes=(1, 256))   # builds on first use, then from the cache
    logits = run(images)                                            # any batch: padded up or chunked

A call of a built batch size goes straight to the package's native entry point (:func:`direct_call`), and a
batch of one runs on one thread (:data:`SINGLE_THREAD_MAX_BATCH`): ``benchmarks/aot_overhead.py`` measures what the
runner adds to the raw package (at most 0.02 ms at batch 1 is the target).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.export import ExportedProgram

from litquant.artifacts.batching import COMPILED_BATCH_SIZES, run_padded
from litquant.artifacts.files import read_artifact_bytes
from litquant.artifacts.inductor import check_int8_kernels, inductor_build
from litquant.artifacts.private_cache import cache_base, check_private, private_dir
from litquant.artifacts.pt2_file import load_program
from litquant.cpu import cpu_info
from litquant.files import atomic_path, write_json

__all__ = ["SINGLE_THREAD_MAX_BATCH", "CompiledMismatchError", "aot_runner", "aot_runner_for_file", "cache_root",
           "direct_call", "package_path"]

#: Batches up to this size run on one thread whatever ``torch.get_num_threads()`` says: at batch 1 the work is too
#: small to share. A second thread gains little where it gains (the raw package on an idle 2-core AMX CPU: 0.157 ms
#: on 1 thread, 0.145 ms on 2, the runner through its former wrapper 0.203 against 0.259 ms; on an idle 2-core
#: AVX-512 VNNI CPU 0.166 against 0.141 ms) and costs a lot on a
#: busy machine, where its hand-off waits for a core (0.51 ms against 28 ms at p50 on a loaded 2-core AVX2 CPU).
#: ``benchmarks/aot_overhead.py`` reports the package's 2-thread over 1-thread time at batch 1.
SINGLE_THREAD_MAX_BATCH = 1


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


@contextlib.contextmanager
def _threads_for(batch_size: int) -> Iterator[None]:
    """One thread for a batch of at most :data:`SINGLE_THREAD_MAX_BATCH` (restored after), else as set."""
    threads = torch.get_num_threads()
    if batch_size > SINGLE_THREAD_MAX_BATCH or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def direct_call(package: Callable[..., Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A loaded AOTInductor package's entry point without the work its ``__call__`` repeats on every call (parsing
    the package's call spec and flattening the arguments, tens of microseconds at batch 1): one tensor in, the one
    tensor out. A package of another signature is returned as it is."""
    loader = getattr(package, "loader", None)
    if loader is None or not hasattr(loader, "boxed_run"):
        return package
    in_spec, out_spec = (torch.utils._pytree.treespec_loads(spec) for spec in loader.get_call_spec())
    if in_spec.num_leaves != 1 or out_spec.num_leaves != 1 or not out_spec.is_leaf():
        return package
    run = loader.boxed_run
    return lambda x: run([x])[0]


def aot_runner(program: ExportedProgram, batch_sizes: Sequence[int] = COMPILED_BATCH_SIZES,
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
            with torch.inference_mode(False), _threads_for(size):  # tuned for the threads it runs on
                data, kernels = _build(program, size, target, max_autotune, check_int8)
            write_json(target.with_suffix(".json"), {"program_sha256": sha256, "batch_size": size,
                                                     "cpu": cpu_info().as_dict(),
                                                     "torch": torch.__version__, "int8_kernels": kernels,
                                                     "max_autotune": max_autotune,
                                                     "package_sha256": hashlib.sha256(data).hexdigest()})
        package = direct_call(torch._inductor.aoti_load_package(io.BytesIO(data)))  # the bytes checked
        _check_outputs(program, package, size, target)
        loaded[size] = package
        return package

    if eager:
        for size in sizes:
            runner_for(size)

    def run_sized(x: torch.Tensor) -> torch.Tensor:
        return run_padded(lambda size, chunk: runner_for(size)(chunk.contiguous()), sizes, x)

    def run_on_one_thread(x: torch.Tensor) -> torch.Tensor:
        with _threads_for(len(x)):
            return run_any(x)

    def run_any(x: torch.Tensor) -> torch.Tensor:
        package = loaded.get(len(x))
        if package is None or not x.is_contiguous():  # a size to build, pad up or split, or a strided view
            package = run_sized
        if torch.is_grad_enabled():
            with torch.no_grad():
                return package(x)
        return package(x)

    def run(x: torch.Tensor) -> torch.Tensor:
        return run_on_one_thread(x) if len(x) <= SINGLE_THREAD_MAX_BATCH else run_any(x)

    return run


def aot_runner_for_file(path: str | os.PathLike, batch_sizes: Sequence[int] = COMPILED_BATCH_SIZES,
                        cache_dir: str | os.PathLike | None = None,
                        **options) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`aot_runner` for a ``.pt2`` file: its bytes are read once, checked as
    :func:`~litquant.artifacts.loading.load_artifact` checks them (nothing pickled or native), hashed for the cache
    key and loaded from that same buffer."""
    data = read_artifact_bytes(Path(path))
    program, _ = load_program(path, data)
    return aot_runner(program, batch_sizes, cache_dir, sha256=hashlib.sha256(data).hexdigest(), **options)
