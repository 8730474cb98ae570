"""Atomic writes: a target is replaced only when its new content is complete."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from litquant.files import atomic_path, write_bytes, write_json, write_text


def test_write_helpers_create_folders_and_leave_no_temporary_file(tmp_path: Path) -> None:
    assert write_text(tmp_path / "a" / "report.md", "# r\n").read_text() == "# r\n"
    assert write_bytes(tmp_path / "b" / "blob.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert json.loads(write_json(tmp_path / "c.json", {"acc": 0.99}).read_text()) == {"acc": 0.99}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/report.md", "b", "b/blob.bin", "c.json"]


def test_failure_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "model.pt2"
    with pytest.raises(RuntimeError, match="export failed"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a model")
        assert tmp.parent == tmp_path and tmp.name != target.name
        raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []


def test_existing_target_is_replaced_only_on_success(tmp_path: Path) -> None:
    target = write_text(tmp_path / "table.csv", "old\n")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("new but incomplete")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
        assert target.read_text() == "old\n"  # not before the block ends
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]


def test_killed_writer_never_leaves_a_truncated_target(tmp_path: Path) -> None:
    target = write_text(tmp_path / "report.json", '{"complete": true}\n')
    writer = (
        "import sys, time\n"
        "from litquant.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    with open(tmp, 'w') as handle:\n"
        "        handle.write('{\"compl')\n"
        "        handle.flush()\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", writer, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"complete": True}
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(".report.") and leftovers[0].endswith(".tmp.json")

    # The next write of the same target removes the dead writer's temporary file, not a live writer's.
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_tmp = tmp_path / leftovers[0].replace(f"-{process.pid}.", f"-{live.pid}.")
        live_tmp.write_text("{")
        write_text(target, '{"second": true}\n')
        assert json.loads(target.read_text()) == {"second": True}
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_tmp.name, target.name])
    finally:
        live.kill()
        live.wait()


def test_lightning_checkpoints_are_written_atomically_too(tmp_path: Path, monkeypatch) -> None:
    """Lightning's ``TorchCheckpointIO`` (used for every checkpoint) writes through an fsspec transaction: a
    write that fails midway leaves the previous checkpoint intact under its name."""
    import fsspec.implementations.local as local
    import pytest
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    target = tmp_path / "last.ckpt"
    checkpoint_io = TorchCheckpointIO()
    checkpoint_io.save_checkpoint({"epoch": 1}, target)
    before = target.read_bytes()

    def write_half_then_fail(self, data):
        self.f.write(bytes(data)[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(local.LocalFileOpener, "write", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint_io.save_checkpoint({"epoch": 2, "weights": list(range(1000))}, target)
    assert target.read_bytes() == before
