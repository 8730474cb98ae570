"""litquant's private cache, where the native code it builds and loads lives: AOTInductor packages and
inductor's own cache (compiled kernels, generated wrappers, precompiled headers).

The folder is ``$LITQUANT_CACHE``, else ``~/.cache/litquant``. Folders are created ``0700`` and, before native
code is built into or loaded from them, checked: owned by this user and writable by no one else. Inductor's
default cache, ``$TMPDIR/torchinductor_$USER``, is one another local user can create first and fill; so every
inductor build of litquant runs with inductor's cache in ``<cache>/inductor``, its precompiled headers
included (which torch otherwise keeps in the default folder whatever ``$TORCHINDUCTOR_CACHE_DIR`` says).

A ``$TORCHINDUCTOR_CACHE_DIR`` the user set is respected, after the same check of the folder it names (created
``0700`` if missing): a folder owned by someone else or writable by others is refused with one line. Its value
equal to inductor's default counts as not set (inductor writes that value itself on first use).

Importing Lightning (through ``torch._dynamo``) already creates the default folder, empty, and fixes in it the
path of dynamo's precompile cache, which is read only with ``TORCH_CACHING_PRECOMPILE=1``: whoever turns that on sets
``$TORCHINDUCTOR_CACHE_DIR`` before starting Python. Everything else inductor and dynamo read or write there is
moved: the ``torch.compile`` call, each first call per batch size, and every compilation run inside
:func:`private_inductor_cache`.

Example::

    from litquant.artifacts.private_cache import private_inductor_cache

    with private_inductor_cache():           # ~/.cache/litquant/inductor, checked
        compiled = torch._inductor.aoti_compile_and_package(program)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["CACHE_ENV", "INDUCTOR_CACHE_ENV", "UntrustedCacheError", "cache_base", "check_private",
           "inductor_cache_dir", "private_dir", "private_inductor_cache"]

CACHE_ENV = "LITQUANT_CACHE"
INDUCTOR_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


class UntrustedCacheError(PermissionError):
    """A cache folder (or file) that someone else owns or could write: no native code is built into or loaded
    from it. The message names it and what to do."""


def cache_base() -> Path:
    """``$LITQUANT_CACHE``, else ``~/.cache/litquant``."""
    base = os.environ.get(CACHE_ENV)
    return Path(base).expanduser() if base else Path.home() / ".cache" / "litquant"


def check_private(items: Iterable[Path], fix: str = "delete the folder to rebuild") -> None:
    """Raise :class:`UntrustedCacheError` unless each of ``items`` is owned by this user and writable by no one
    else; ``fix`` ends the message."""
    for item in items:
        info = item.stat()
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise UntrustedCacheError(f"{item}: not owned by this user (uid {info.st_uid}); refusing to build or "
                                      f"load native code there ({fix})")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UntrustedCacheError(f"{item}: writable by others (mode {stat.filemode(info.st_mode)}); refusing "
                                      f"to build or load native code there ({fix})")


def private_dir(path: Path, what: str = "cache folder") -> Path:
    """``path`` as a folder, each missing level created ``0700`` (``Path.mkdir(parents=True)`` would give the
    parents the umask's mode); ``OSError`` (one line, saying to set ``$LITQUANT_CACHE``) where it cannot be."""
    try:
        for level in reversed([level for level in (path, *path.parents) if not level.exists()]):
            level.mkdir(mode=0o700, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
    except OSError as err:
        raise OSError(f"cannot create the {what} {path} ({err.strerror or err}); "
                      f"set {CACHE_ENV} to a folder you can write to") from None
    return path


def inductor_cache_dir() -> Path:
    """The folder inductor's cache must use, created ``0700`` if missing and checked (see the module's
    docstring): the user's own ``$TORCHINDUCTOR_CACHE_DIR``, else ``<cache>/inductor``."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get(INDUCTOR_CACHE_ENV)
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        folder = private_dir(Path(chosen).expanduser(), f"{INDUCTOR_CACHE_ENV} folder")
        check_private([folder], f"unset {INDUCTOR_CACHE_ENV} to use litquant's private cache, or point it to a "
                                "folder of yours that only you can write")
        return folder
    folder = private_dir(cache_base() / "inductor", "inductor cache folder")
    check_private([folder, folder.parent], f"delete {folder.parent} to start a new one, or set {CACHE_ENV}")
    return folder


@contextlib.contextmanager
def private_inductor_cache() -> Iterator[Path]:
    """Inductor's cache in :func:`inductor_cache_dir` for the duration: ``$TORCHINDUCTOR_CACHE_DIR`` (through
    torch's own ``temporary_cache_dir``, which also clears the paths inductor memoized) and the precompiled
    headers' folder, which torch fixes at import in the default folder. Restored on exit."""
    from torch._inductor import codecache
    from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

    folder = inductor_cache_dir()
    headers = folder / "precompiled_headers"
    saved = {name: getattr(codecache, name) for name in ("_HEADER_DIR", "_HEADER_LOCK_DIR") if hasattr(codecache, name)}
    precompiled = getattr(codecache, "_precompile_header", None)
    with temporary_cache_dir(str(folder)):
        try:
            for name, value in (("_HEADER_DIR", headers), ("_HEADER_LOCK_DIR", headers / "locks")):
                if name in saved:
                    setattr(codecache, name, str(value))
            if precompiled is not None:
                precompiled.cache_clear()  # header paths memoized under another folder
            yield folder
        finally:
            for name, value in saved.items():
                setattr(codecache, name, value)
            if precompiled is not None:
                precompiled.cache_clear()
