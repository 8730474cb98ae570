"""litquant's private cache for native code: folders created 0700, foreign-owned or world-writable ones refused,
inductor's cache (precompiled headers included) moved there for every build, a user's own folder respected.

Tests run as root, so "foreign-owned" is a folder chowned to another uid (65534, nobody)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from litquant.artifacts.private_cache import (
    INDUCTOR_CACHE_ENV,
    UntrustedCacheError,
    cache_base,
    inductor_cache_dir,
    private_inductor_cache,
)

OTHER_UID = 65534


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$LITQUANT_CACHE`` in a folder that does not exist yet, and no ``$TORCHINDUCTOR_CACHE_DIR``."""
    folder = tmp_path / "home" / "litquant"
    monkeypatch.setenv("LITQUANT_CACHE", str(folder))
    monkeypatch.delenv(INDUCTOR_CACHE_ENV, raising=False)
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_inductor_cache_is_created_private_under_litquants_cache(cache: Path) -> None:
    assert cache_base() == cache
    folder = inductor_cache_dir()
    assert folder == cache / "inductor"
    assert mode(folder) == mode(cache) == mode(cache.parent) == 0o700  # every level it created


@pytest.mark.parametrize("where", ["inductor", "litquant"])
def test_foreign_owned_cache_folder_is_refused(where: str, cache: Path) -> None:
    folder = cache / "inductor"
    folder.mkdir(parents=True, mode=0o700)
    os.chown(folder if where == "inductor" else cache, OTHER_UID, OTHER_UID)
    with pytest.raises(UntrustedCacheError) as error:
        inductor_cache_dir()
    assert one_line(error).startswith(f"{folder if where == 'inductor' else cache}: not owned by this user (uid "
                                      f"{OTHER_UID}); refusing to build or load native code there")


def test_world_writable_cache_folder_is_refused(cache: Path) -> None:
    folder = cache / "inductor"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o777)
    with pytest.raises(UntrustedCacheError) as error:
        inductor_cache_dir()
    assert one_line(error).startswith(f"{folder}: writable by others (mode drwxrwxrwx)")


def test_a_users_own_inductor_cache_dir_is_respected_a_foreign_one_refused(cache: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "mine" / "inductor"
    monkeypatch.setenv(INDUCTOR_CACHE_ENV, str(own))
    assert inductor_cache_dir() == own and mode(own) == 0o700
    assert not cache.exists()
    foreign = tmp_path / "theirs"
    foreign.mkdir(mode=0o755)
    os.chown(foreign, OTHER_UID, OTHER_UID)
    monkeypatch.setenv(INDUCTOR_CACHE_ENV, str(foreign))
    with pytest.raises(UntrustedCacheError) as error:
        inductor_cache_dir()
    assert one_line(error).startswith(f"{foreign}: not owned by this user")
    assert f"unset {INDUCTOR_CACHE_ENV} to use litquant's private cache" in one_line(error)


def test_inductors_own_default_counts_as_unset(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inductor writes its default into the environment on first use: that is not the user's choice."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv(INDUCTOR_CACHE_ENV, default_cache_dir())
    assert inductor_cache_dir() == cache / "inductor"


def test_private_inductor_cache_moves_every_cache_path_and_restores_them(cache: Path) -> None:
    from torch._inductor import codecache
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    def header_dirs() -> tuple[str, str]:
        return codecache._HEADER_DIR, codecache._HEADER_LOCK_DIR

    before = header_dirs()
    with private_inductor_cache() as folder:
        assert cache_dir() == str(folder) == str(cache / "inductor")
        headers = folder / "precompiled_headers"  # torch fixes this folder at import otherwise
        assert header_dirs() == (str(headers), str(headers / "locks"))
    assert os.environ.get(INDUCTOR_CACHE_ENV) is None and header_dirs() == before
