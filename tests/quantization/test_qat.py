"""Method ``qat``'s plain PyTorch loop (``litquant.quantization.qat``): what its user sees while it runs."""

from __future__ import annotations

import pytest

from litquant.model import MNISTClassifier
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.model_io import check_module
from litquant.quantization.qat import quantize_qat


@pytest.mark.parametrize(("max_steps", "shown"), [(None, "0/4"), (3, "0/3")])
def test_the_progress_bar_knows_how_many_steps_an_epoch_takes(make_datamodule, capsys, max_steps: int | None,
                                                               shown: str) -> None:
    datamodule = make_datamodule(train_size=256, batch_size=64)
    datamodule.setup("fit")
    config = QuantizeConfig(qat_epochs=1, qat_max_steps=max_steps)
    quantize_qat(check_module(MNISTClassifier(), datamodule), datamodule, config, progress=True)
    err = capsys.readouterr().err
    assert "qat: epoch 1/1" in err and shown in err  # without a total, tqdm shows "0it" and no percentage
