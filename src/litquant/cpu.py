"""The CPU (and GPU) at hand, read at run time, and the choices that depend on it.

Machines differ: an AVX2-only CPU has no fast bf16 and multiplies int8 with an instruction that saturates
pairs of products to 16 bits; an AVX-512 CPU with VNNI has exact int8 dot products; AVX512_BF16 or AMX
run bf16 natively. litquant reads the CPU once and picks the training precision and the int8 range (full
8 bits, or 7 bits where the int8 kernels would saturate) from it.

What counts is what the kernels may use, not only what the CPU has: ``ONEDNN_MAX_CPU_ISA`` (oneDNN's int8 and
bf16 kernels) and ``ATEN_CPU_CAPABILITY`` (torch's own kernels, read back from torch) cap the kind, so that
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` makes an AMX machine take the AVX2 path end to end
(fp32 training, 7-bit int8). ``python -m litquant.cpu`` prints the CPU and the choices in one line.

Example::

    from litquant.cpu import choose_precision, cpu_info

    info = cpu_info()                   # CpuInfo(name='AMD EPYC', isa='avx2', has_vnni=False, ...)
    choice = choose_precision(info)     # PrecisionChoice(precision='32-true', channels_last=False, reason=...)
    print(choice.reason)
    choose_reduce_range("auto", info)   # RangeChoice(reduce_range=True, reason='avx2 CPU without VNNI/AMX: ...', ...)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

__all__ = ["CpuInfo", "PrecisionChoice", "RangeChoice", "ReduceRange", "check_reduce_range", "choose_precision",
           "choose_reduce_range", "cpu_info", "cpu_info_from_flags", "int8_reduce_range", "onednn_isa_cap",
           "onnxruntime_cpu_info", "summary"]

#: How the int8 range is chosen: ``"auto"`` (from the CPU), or ``True``/``False`` (7 bits / full 8 bits).
ReduceRange = Literal["auto"] | bool

#: The ``/proc/cpuinfo`` flags litquant's choices read.
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
         "amx_bf16")

#: What oneDNN may use under each ``ONEDNN_MAX_CPU_ISA`` value: (AVX2, AVX-512, VNNI, bf16, AMX). A value not
#: listed (``ALL``, ``DEFAULT``, the AMX ones, a typo that oneDNN ignores too) caps nothing.
ONEDNN_CAPS: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "SSE41": (False, False, False, False, False),
    "AVX": (False, False, False, False, False),
    "AVX2": (True, False, False, False, False),
    "AVX2_VNNI": (True, False, True, False, False),
    "AVX2_VNNI_2": (True, False, True, False, False),
    "AVX512_CORE": (True, True, False, False, False),
    "AVX512_CORE_VNNI": (True, True, True, False, False),
    "AVX512_CORE_BF16": (True, True, True, True, False),
    "AVX512_CORE_FP16": (True, True, True, True, False),
    "AVX10_1_512": (True, True, True, True, False),
}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """What litquant needs to know of a CPU.

    Attributes:
        name: the model name (``/proc/cpuinfo``'s ``model name``, else ``platform.processor()``).
        isa: the best instruction-set kind: ``amx``, ``avx512-vnni``, ``avx512``, ``avx2`` or ``other``.
        has_vnni: exact int8 dot products (AVX512_VNNI or AVX-VNNI).
        has_bf16: native bf16 arithmetic (AVX512_BF16 or AMX-BF16).
        has_amx: AMX tiles.
        flags: the flags of :data:`FLAGS` the CPU has.
        torch_capability: ``torch.backends.cpu.get_cpu_capability()`` (the kernels torch dispatches to).
    """

    name: str
    isa: str
    has_vnni: bool
    has_bf16: bool
    has_amx: bool
    flags: tuple[str, ...] = ()
    torch_capability: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "flags": list(self.flags)}


def onednn_isa_cap(value: str | None = None) -> tuple[bool, bool, bool, bool, bool] | None:
    """What oneDNN's kernels may use under ``ONEDNN_MAX_CPU_ISA`` (default: this process's environment, or the
    older ``DNNL_MAX_CPU_ISA``): (AVX2, AVX-512, VNNI, bf16, AMX), or ``None`` when nothing is capped."""
    if value is None:
        value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    return ONEDNN_CAPS.get(value.strip().upper())


def cpu_info_from_flags(flags: Iterable[str], name: str = "unknown", torch_capability: str = "",
                        onednn_cap: tuple[bool, bool, bool, bool, bool] | None = None) -> CpuInfo:
    """A :class:`CpuInfo` from ``/proc/cpuinfo``-style flags, torch's capability string (which counts when the
    flags are unknown, e.g. off Linux, and caps the kind when torch was told to use less, as with
    ``ATEN_CPU_CAPABILITY=avx2``) and oneDNN's cap (:func:`onednn_isa_cap`)."""
    flags = set(flags)
    capability = torch_capability.upper()
    avx2_ok, avx512_ok, vnni_ok, bf16_ok, amx_ok = onednn_cap or (True,) * 5
    aten_below_avx512 = capability in ("AVX2", "DEFAULT") and bool(flags)  # torch runs AVX2 or scalar kernels
    has_amx = bool({"amx_tile", "amx_int8"} & flags) and amx_ok
    has_vnni = (bool({"avx512_vnni", "avx_vnni"} & flags) or has_amx or capability in ("AVX512_VNNI", "AMX")) \
        and vnni_ok
    has_avx512 = ("avx512f" in flags or capability.startswith("AVX512") or capability == "AMX") and avx512_ok \
        and not aten_below_avx512
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags) and bf16_ok and not aten_below_avx512
    if has_amx:
        isa = "amx"
    elif has_avx512 and has_vnni:
        isa = "avx512-vnni"
    elif has_avx512:
        isa = "avx512"
    elif ("avx2" in flags or capability == "AVX2") and avx2_ok and capability != "DEFAULT":
        isa = "avx2"
    else:
        isa = "other"
    return CpuInfo(name=name, isa=isa, has_vnni=has_vnni, has_bf16=has_bf16, has_amx=has_amx,
                   flags=tuple(f for f in FLAGS if f in flags), torch_capability=torch_capability)


@functools.cache
def _proc_cpuinfo() -> tuple[str, tuple[str, ...]]:
    """The model name and flags of the first processor in ``/proc/cpuinfo`` (no flags off Linux)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's entries
    except OSError:
        pass
    return fields.get("model name") or platform.processor() or "unknown", tuple(fields.get("flags", "").split())


@functools.cache
def cpu_info() -> CpuInfo:
    """The CPU this process runs on (read once), as torch's and oneDNN's kernels may use it (imports torch)."""
    import torch

    name, flags = _proc_cpuinfo()
    return cpu_info_from_flags(flags, name, torch.backends.cpu.get_cpu_capability(), onednn_isa_cap())


def onnxruntime_cpu_info() -> CpuInfo:
    """The CPU as ONNX Runtime's kernels may use it: its flags alone, which neither torch's capability nor
    ``ONEDNN_MAX_CPU_ISA`` caps; imports no torch where the flags are known (Linux), else :func:`cpu_info`."""
    name, flags = _proc_cpuinfo()
    return cpu_info_from_flags(flags, name) if flags else cpu_info()


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """A Trainer ``precision`` with whether the model should use ``channels_last``, and why (one line)."""

    precision: str
    channels_last: bool
    reason: str


def _cuda_bf16() -> str | None:
    """The CUDA device's name when it runs bf16, else ``None``."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.cuda.get_device_name(0)
    return None


def choose_precision(info: CpuInfo | None = None, *, accelerator: str = "auto",
                     cuda_bf16_device: str | None | bool = True) -> PrecisionChoice:
    """The training precision for this machine: ``bf16-mixed`` with ``channels_last`` on a CUDA GPU with bf16
    (when the accelerator may be a GPU) or on a CPU with native bf16 (AVX512_BF16 or AMX), ``32-true``
    elsewhere (bf16 without native support is emulated and slower than fp32).

    ``cuda_bf16_device``: ``True`` asks torch; a name or ``None`` injects the answer (for tests).
    """
    info = info or cpu_info()
    gpu = _cuda_bf16() if cuda_bf16_device is True else cuda_bf16_device
    if gpu and accelerator in ("auto", "gpu", "cuda"):
        return PrecisionChoice("bf16-mixed", True, f"CUDA GPU {gpu} supports bf16")
    if info.has_bf16:
        native = "AMX" if info.has_amx else "AVX512_BF16"
        return PrecisionChoice("bf16-mixed", True, f"CPU {info.name} has native bf16 ({native})")
    if {"avx512_bf16", "amx_bf16"} & set(info.flags):  # the CPU has it, but the kernels may not use it
        return PrecisionChoice("32-true", False, f"CPU {info.name} ({info.isa}) may not use its native bf16 here "
                                                 "(ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY caps the kernels below "
                                                 "it), where bf16 would be emulated and slower")
    return PrecisionChoice("32-true", False, f"CPU {info.name} ({info.isa}) has no native bf16 (AVX512_BF16 or AMX), "
                                             "where bf16 would be emulated and slower")


@dataclasses.dataclass(frozen=True)
class RangeChoice:
    """Whether int8 quantization uses a 7-bit operand (``reduce_range``), why (one line), and the CPU kind
    (:attr:`CpuInfo.isa`) it was chosen on, and whether that CPU has VNNI.

    Without VNNI, x86 int8 kernels multiply ``uint8`` by ``int8`` with ``vpmaddubsw``, which saturates each pair
    of products to 16 bits; a 7-bit operand keeps the sums in range. With VNNI (or AMX) products are exact and
    the full 8 bits are more precise.
    """

    reduce_range: bool
    reason: str
    isa: str
    vnni: bool

    def describe(self, saturates_without_vnni: bool | None = None) -> dict[str, Any]:
        """The artifact description's ``int8_range`` entry: the choice, why, the CPU kind, and whether the
        artifact's int8 kernels saturate on a CPU without VNNI (default: when the full range was chosen; ONNX
        Runtime's ``uint8`` weights do not, whatever the range)."""
        saturates = not self.reduce_range if saturates_without_vnni is None else saturates_without_vnni
        return {"reduce_range": self.reduce_range, "reason": self.reason, "chosen_for": self.isa,
                "chosen_for_vnni": self.vnni, "saturates_without_vnni": saturates}


def check_reduce_range(setting: Any, option: str = "--quant.reduce_range") -> None:
    """Refuse a ``reduce_range`` setting other than ``"auto"``, ``True`` or ``False``, naming ``option``."""
    if not (isinstance(setting, bool) or setting == "auto"):
        raise ValueError(f"{option} must be auto, true or false, got {setting!r}")


def choose_reduce_range(setting: ReduceRange = "auto", info: CpuInfo | None = None, *,
                        option: str = "--quant.reduce_range") -> RangeChoice:
    """The one place ``reduce_range`` is decided: ``"auto"`` gives 7 bits only on a CPU without VNNI/AMX, full
    8 bits with them; ``True``/``False`` win over the CPU (the reason then names ``option``)."""
    check_reduce_range(setting, option)
    info = info or cpu_info()
    if isinstance(setting, bool):
        return RangeChoice(setting, f"set by {option} {str(setting).lower()}", info.isa, info.has_vnni)
    if info.has_vnni:
        flag = next((f for f in ("amx_int8", "amx_tile", "avx512_vnni", "avx_vnni") if f in info.flags),
                    info.torch_capability or "VNNI")
        return RangeChoice(False, f"{info.isa} CPU with {flag}: exact int8 products, full 8-bit range", info.isa,
                           True)
    return RangeChoice(True, f"{info.isa} CPU without VNNI/AMX: 7 bits, where full-range uint8 x int8 products "
                             "would saturate", info.isa, False)


def int8_reduce_range(info: CpuInfo | None = None) -> bool:
    """Whether int8 kernels need a 7-bit operand on ``info`` (default: this CPU): only without VNNI, where the
    ``uint8 × int8`` instruction (``vpmaddubsw``) saturates pairs of products to 16 bits."""
    return choose_reduce_range("auto", info).reduce_range


def summary(info: CpuInfo | None = None) -> str:
    """One line naming the CPU and what litquant chose on it: kind, torch's kernels, precision, int8 range."""
    info = info or cpu_info()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    capped = f", ONEDNN_MAX_CPU_ISA={onednn}" if onednn else ""
    precision = choose_precision(info, cuda_bf16_device=None)
    bits = "7-bit" if choose_reduce_range("auto", info).reduce_range else "full 8-bit"
    return (f"CPU {info.name}: litquant uses the {info.isa} kind (torch kernels {info.torch_capability or '?'}"
            f"{capped}); training precision on it {precision.precision}, int8 range {bits}")


if __name__ == "__main__":
    print(summary())
