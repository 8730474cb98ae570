"""The served models: warmed at start-up the way a request runs them, so that no request compiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from litquant.serve.models import load_models, run_batch


def test_no_request_after_start_up_compiles_again(tiny_artifacts: dict[str, Path]) -> None:
    """Each batch size is compiled once while loading; a request's batch (built from uint8 images, as the server
    builds it) then meets the compiled code's guards instead of recompiling for a second (never a first) time."""
    models = load_models({"ptq": str(tiny_artifacts["ptq"])}, "compile", max_batch_size=8)
    compilations = models["ptq"]._runner.compilations
    assert len(compilations) == 2  # batch 1 and batch 8
    digit = np.full((28, 28), 255, dtype=np.uint8)
    for count in (1, 3, 8, 1):
        results = run_batch(models, [digit] * count, [["ptq"]] * count)
        assert [len(result["ptq"]["probabilities"]) for result in results] == [10] * count
    assert len(compilations) == 2, "a request recompiled the model it was warmed for"
