"""Atomic file writes: write to a temporary file beside the target, then rename it into place.

A crash never leaves a truncated file under its final name. A writer killed outright (SIGKILL) leaves its
hidden temporary file behind; the next write of the same target on the same host removes it.

Example::

    from litquant.files import atomic_path, write_text
    write_text("report.md", "# results\n")
    with atomic_path("model.pt2") as tmp:
        torch.export.save(program, tmp)
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_bytes", "write_json", "write_text"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    # the temporary name keeps the suffix (some writers, torch.export.save, check it) and names its writer
    handle, name = tempfile.mkstemp(prefix=f".{target.stem}.{_host()}-{os.getpid()}.", suffix=f".tmp{target.suffix}",
                                    dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the final file the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def _remove_orphans(target: Path) -> None:
    """Delete temporary files of ``target`` left by writers of this host that no longer run."""
    stem, suffix = target.stem, target.suffix
    pattern = re.compile(rf"\.{re.escape(stem)}\.{re.escape(_host())}-(\d+)\.[^.]+\.tmp{re.escape(suffix)}")
    for leftover in target.parent.glob(f".{glob.escape(stem)}.*.tmp{glob.escape(suffix)}"):
        match = pattern.fullmatch(leftover.name)
        if match and not _running(int(match.group(1))):
            leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, data: Any) -> Path:
    return write_text(target, json.dumps(data, indent=2, sort_keys=False) + "\n")
