"""Every artifact reloads and gives its accuracy in a new Python process, from its file alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from quantization_helpers import small_datamodule

from litquant.artifacts import load_artifact
from litquant.evaluation import evaluate
from litquant.fresh_process import check_all_in_fresh_process
from litquant.quantization import METHODS


@pytest.fixture(scope="module")
def made(tiny_artifacts: dict[str, Path]) -> dict[str, Path]:
    return tiny_artifacts


def test_every_artifact_reloads_in_a_fresh_process(made: dict[str, Path], mnist_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt2"
    broken.write_bytes(b"not a zip")
    paths = [made[name] for name in ("fp32", *METHODS)]
    *results, failed = check_all_in_fresh_process([*paths, broken], mnist_dir, batches=1, batch_size=128)
    datamodule = small_datamodule(mnist_dir, test_size=128)
    for path, result in zip(paths, results, strict=True):
        assert result["ok"], result
        assert result["samples"] == 128
        assert result["accuracy"] == pytest.approx(evaluate(load_artifact(path, compile=False), datamodule))
    assert not failed["ok"] and "not a .pt2 archive" in failed["error"]  # reported, the others still ran
