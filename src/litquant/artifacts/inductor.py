"""What every inductor build of litquant runs in, and the check of the code it generates for an int8 graph.

:func:`inductor_build` keeps inductor's cache in litquant's private, checked folder
(:mod:`litquant.artifacts.private_cache`) and its tables and warnings off the terminal. :func:`check_int8_kernels`
reads the generated code (AOTInductor's C++ wrapper or ``torch.compile``'s Python wrapper) and raises
:class:`Int8FallbackError` unless every int8 layer runs an int8 kernel: an int8 graph that inductor lowers to fp32
kernels still gives the right answers, several times slower, with no error.

Example::

    from litquant.artifacts.inductor import check_int8_kernels, inductor_build

    with inductor_build():
        ...                                              # compile with inductor, collecting the generated sources
    check_int8_kernels(program, sources)                 # {'conv_layers': 2, 'int8_conv_calls': 2, ...}
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator

import torch
from torch.export import ExportedProgram

from litquant.artifacts.private_cache import private_inductor_cache

__all__ = ["BUILD_NOISE", "FP32_KERNELS", "INT8_CONV", "INT8_GEMM_KERNELS", "INT8_LINEAR_CALLS", "Int8FallbackError",
           "check_int8_kernels", "check_kernel_counts", "inductor_build", "int8_kernel_counts"]

#: Calls of fp32 convolution / matmul kernels in inductor's generated code (AOTInductor's C++ wrapper or
#: ``torch.compile``'s Python wrapper): an int8 graph that contains one fell back to fp32 for that layer.
FP32_KERNELS = re.compile(r"aoti_torch_cpu_(convolution|_convolution_pointwise\w*|addmm|mm|bmm|_linear_pointwise\w*|"
                          r"_mkl_linear|mkldnn_\w*convolution\w*)\b|extern_kernels\.(convolution|addmm|mm|bmm)\b|"
                          r"torch\.ops\.(aten\.(convolution|addmm|mm)|mkldnn\.\w*(convolution|linear)\w*)\b")
INT8_CONV = re.compile(r"aoti_torch_cpu__qconv\w*\(|torch\.ops\.onednn\.qconv\w*")
#: Calls of oneDNN's int8 linear kernel (AOTInductor's C++ wrapper or ``torch.compile``'s Python wrapper).
INT8_LINEAR_CALLS = re.compile(r"aoti_torch_cpu__qlinear\w*\(|torch\.ops\.onednn\.qlinear\w*")
#: Definitions of inductor's C++ GEMM template kernels that multiply ``uint8`` activations by ``int8`` weights,
#: whatever micro-kernel they use inside (AVX2/AVX-512 vector code, VNNI, AMX tiles): the int8 GEMM template takes
#: ``const uint8_t* X, const int8_t* W``, its fp32 and bf16 variants ``const float*`` / ``const bfloat16*``. Group 1
#: is the kernel's name (a kernel is declared before it is defined: count names, not matches).
INT8_GEMM_KERNELS = re.compile(r"\bvoid\s+(\w+)\s*\(\s*const\s+uint8_t\s*\*\s*X\s*,\s*const\s+int8_t\s*\*\s*W\b")


class Int8FallbackError(RuntimeError):
    """The compiled int8 model runs fp32 kernels for some layers (a silent several-fold slowdown)."""



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


def int8_kernel_counts(sources: str) -> dict[str, int]:
    """The int8 kernels that inductor's generated ``sources`` run: oneDNN int8 convolution calls, and int8 linear
    kernels (oneDNN ``qlinear`` calls plus inductor's int8 GEMM template kernels, one per name)."""
    gemm = set(INT8_GEMM_KERNELS.findall(sources))
    return {"int8_conv_calls": len(INT8_CONV.findall(sources)),
            "int8_linear_kernels": len(INT8_LINEAR_CALLS.findall(sources)) + len(gemm)}


def check_kernel_counts(layers: dict[str, int], sources: str) -> dict[str, int]:
    """:func:`check_int8_kernels` for a program's layer counts (``conv_layers``, ``linear_layers``,
    ``fp32_conv_layers``, ``fp32_linear_layers``, as ``_layer_counts`` finds them)."""
    found = {**layers, **int8_kernel_counts(sources)}
    fp32 = sorted({match.group(0) for match in FP32_KERNELS.finditer(sources)})
    if fp32 and not found["fp32_conv_layers"] + found["fp32_linear_layers"]:  # else the int8 counts below decide
        raise Int8FallbackError(f"the compiled int8 model fell back to fp32 kernels ({', '.join(fp32)}); "
                                "the graph is not int8 end to end")
    if found["int8_conv_calls"] < found["conv_layers"] or found["int8_linear_kernels"] < found["linear_layers"]:
        raise Int8FallbackError(f"the compiled int8 model does not run int8 kernels for every layer ({found})")
    return found


def check_int8_kernels(program: ExportedProgram, sources: str) -> dict[str, int]:
    """Raise :class:`Int8FallbackError` unless the generated ``sources`` run every int8 convolution and every int8
    linear layer of ``program`` with an int8 kernel and (when the program leaves no layer in fp32) no fp32
    convolution or matmul at all. Returns the counts found."""
    return check_kernel_counts(_layer_counts(program), sources)


#: Warnings torch raises about its own code while inductor compiles (nothing a user can act on).
BUILD_NOISE = (r"To copy construct from a tensor", r"TypedStorage is deprecated")


@contextlib.contextmanager
def inductor_build() -> Iterator[None]:
    """What every inductor compilation of litquant runs in (an AOTInductor package, or ``torch.compile``'s graph):
    inductor's cache in litquant's private, checked folder
    (:func:`~litquant.artifacts.private_cache.private_inductor_cache`), no autotuning tables on stderr (unless asked
    for with inductor's environment variables) and no :data:`BUILD_NOISE` warnings."""
    quiet = {name: value for name, variable, value in (
        ("autotune_num_choices_displayed", "TORCHINDUCTOR_AUTOTUNE_NUM_CHOICES_DISPLAYED", 0),
        ("max_autotune_report_choices_stats", "TORCHINDUCTOR_MAX_AUTOTUNE_REPORT_CHOICES_STATS", False))
        if variable not in os.environ}
    with private_inductor_cache(), warnings.catch_warnings(), torch._inductor.config.patch(quiet):
        for message in BUILD_NOISE:
            warnings.filterwarnings("ignore", message, UserWarning)
        yield

