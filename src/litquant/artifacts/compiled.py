"""The ``torch.compile`` runner of a ``.pt2``: inductor with freezing, compiled in this process on first use per
batch size, every compilation of an int8 graph checked to run int8 kernels.

Example::

    from litquant.artifacts.compiled import compiled_runner
    from litquant.artifacts.pt2_file import load_program

    program, description = load_program("out/ptq.pt2")
    run = compiled_runner(program.module(), progress=True, name="int8 model", program=program)
    with torch.inference_mode():
        logits = run(images)                     # any batch: padded up to a compiled size, or chunked
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from litquant.artifacts.batching import COMPILED_BATCH_SIZES, run_padded
from litquant.artifacts.inductor import Int8FallbackError, check_int8_kernels, inductor_build
from litquant.artifacts.private_cache import private_inductor_cache

__all__ = ["compiled_runner"]


@contextlib.contextmanager
def _freezing() -> Iterator[None]:
    """Inductor's ``freezing`` (int8 weights folded into the kernels) for this call only, not for the process:
    dynamo reads the flag while tracing (parameters stay constants), inductor while compiling. A plain
    save-and-restore, since ``config.patch`` costs tens of microseconds on every batch-1 call."""
    config = torch._inductor.config
    previous = config.freezing
    config.freezing = True
    try:
        yield
    finally:
        config.freezing = previous


def _inductor_backend(program: torch.export.ExportedProgram | None, name: str,
                      compilations: list[dict[str, int] | None]) -> Callable[..., Any]:
    """A ``torch.compile`` backend: inductor with freezing, run only with gradients off, and for an int8
    ``program`` a check of the generated code after every (re)compilation (dynamo recompiles on a new batch
    size, thread count or grad mode): int8 kernels for every layer and no fp32 convolution or matmul, else
    :class:`~litquant.artifacts.inductor.Int8FallbackError`. Each compilation appends its kernel counts (``None``
    without ``program``) to ``compilations``."""
    from unittest import mock

    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.graph import GraphLowering

    def backend(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., Any]:
        if torch.is_grad_enabled() or not torch._inductor.config.freezing:
            # inductor freezes weights (and fuses int8 ops) only with gradients off: this compilation would run
            # the int8 graph with fp32 kernels, several times slower, with no error
            raise Int8FallbackError(f"{name}: compiling with gradients enabled or inductor's freezing off (the "
                                    "int8 model would run fp32 kernels); call it under torch.inference_mode()")
        sources: list[str] = []
        with inductor_build(), mock.patch.object(GraphLowering, "save_output_code", sources.append):
            compiled = compile_fx(graph, example_inputs)
        compilations.append(check_int8_kernels(program, "\n".join(sources)) if program is not None else None)
        return compiled

    return backend


def compiled_runner(module: nn.Module, progress: bool, name: str, program: torch.export.ExportedProgram | None = None,
                    batch_sizes: Sequence[int] = COMPILED_BATCH_SIZES) -> Callable[..., Any]:
    """``module`` compiled with inductor (freezing), per batch size of ``batch_sizes``; with the int8
    ``program`` given, every compilation is checked to run int8 kernels (see :func:`_inductor_backend`).

    Args:
        module: the program's module (``program.module()``).
        progress: print a note to stderr before compiling a batch size.
        name: what the note and errors call the model.
        program: the int8 program whose kernels to check; ``None`` for an fp32 one.
        batch_sizes: the static batch sizes compiled (on first use).

    The runner must be called under ``torch.inference_mode()`` (else :class:`Int8FallbackError`); its
    ``compilations`` attribute lists what each (re)compilation was checked to run.
    """
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  registers int8 lowerings

    compilations: list[dict[str, int] | None] = []
    with private_inductor_cache():  # torch.compile itself reads inductor's cache folder (its bisector's state)
        compiled = torch.compile(module, backend=_inductor_backend(program, name, compilations), dynamic=False)
    seen: set[int] = set()
    sizes = sorted(set(batch_sizes))

    def call(size: int, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        first = size not in seen
        if first and progress:
            print(f"compiling {name} with inductor for batch {size} (takes a few seconds)...",
                  file=sys.stderr, flush=True)
        seen.add(size)
        try:  # a first call traces (dynamo reads inductor's cache folder too), any call may recompile
            with _freezing(), private_inductor_cache() if first else contextlib.nullcontext():
                return compiled(*args, **kwargs)
        except torch._dynamo.exc.BackendCompilerFailed as err:  # our checks' own errors, not dynamo's wrapper
            if isinstance(err.inner_exception, Int8FallbackError | OSError):  # OSError: an untrusted cache
                raise err.inner_exception from None
            raise

    def run(*args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        return run_padded(call, sizes, *args, **kwargs)

    run.compilations = compilations  # type: ignore[attr-defined]  # what each (re)compilation was checked to run
    return run
