"""What every benchmark result records: CPU model and flags, threads, library versions, command, date."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import re
import shlex
import site
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LIBRARIES = ("torch", "lightning", "torchmetrics", "torchao", "onnxruntime", "onnx", "numpy")
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "avx512_bf16", "fma")


def cpu_info() -> dict:
    """The CPU as every result records it, read by :func:`litquant.cpu.cpu_info`."""
    from litquant.cpu import cpu_info as litquant_cpu_info

    info = litquant_cpu_info()
    return {"model": info.name, "flags": [f for f in FLAGS if f in info.flags], "cores": os.cpu_count(),
            "torch_cpu_capability": info.torch_capability}


_ABSOLUTE = re.compile(r"(?<![\w.])/[^\s'\"`:;,()]+")


def portable(text: str) -> str:
    """``text`` with no path of this machine in it: installed libraries as ``torch/optim/adam.py``, everything
    else relative to the repository root (``benchmarks/inference.py``, ``../shared/data``)."""
    found = [*site.getsitepackages(), site.getusersitepackages()]
    prefixes = sorted({*found, *map(os.path.realpath, found)}, key=len, reverse=True)

    def relative(match: re.Match) -> str:
        path = match.group()
        for prefix in prefixes:
            if path.startswith(prefix.rstrip("/") + "/"):
                return path[len(prefix.rstrip("/")) + 1:]
        return os.path.relpath(path, ROOT)

    return _ABSOLUTE.sub(relative, text)


def command_line() -> str:
    """How this benchmark was started, with paths relative to the repository root."""
    return portable(shlex.join(["python", *sys.argv]))


def environment() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "cpu": cpu_info(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "versions": versions,
    }


def cpu_kind() -> str:
    """The CPU's instruction-set kind (``avx2``, ``avx512-vnni``, ``amx``...): results files carry it in their
    name, so that a result from one kind of CPU never overwrites, or is read as, one from another."""
    from litquant.cpu import cpu_info as litquant_cpu_info

    return litquant_cpu_info().isa


def result_name(name: str) -> str:
    """``<name>.<cpu kind>``, the default name of a benchmark's results files on this machine."""
    return f"{name}.{cpu_kind()}"


def _portable_strings(value):
    """``value`` with :func:`portable` applied to every string inside it (settings may hold data folders)."""
    if isinstance(value, str):
        return portable(value)
    if isinstance(value, dict):
        return {key: _portable_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable_strings(item) for item in value]
    return value


def save_results(name: str, results: dict) -> Path:
    """Write ``results/<name>.json`` with the environment attached, and return its path."""
    from litquant.files import write_json

    path = RESULTS / f"{name}.json"
    write_json(path, _portable_strings({"environment": environment(), **results}))
    print(f"wrote {path}")
    return path
