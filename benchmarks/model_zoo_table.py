"""The model zoo's table: each model of ``tests/model_zoo.py`` trained in fp32 (1 epoch), fine-tuned with the
``QuantizationAwareTraining`` callback (defaults, 8 steps), then measured as the zoo tests check it.

Columns: parameters; test accuracy of the int8 model and of the same weights in fp32 (512 test images); whether
three calls give identical outputs; argmax agreement of the saved ``.pt2`` reloaded in this process with
``torch.export.load``; the callback's fit and conversion time (noisy on a shared machine)::

    python benchmarks/model_zoo_table.py --data_dir DIR [--models resnet vit ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from model_zoo import ZOO  # noqa: E402

from litquant.artifacts.signature import flat_outputs, program_signature  # noqa: E402
from litquant.callbacks import QuantizationAwareTraining  # noqa: E402
from litquant.data import MNISTDataModule  # noqa: E402

LOGITS_OUTPUT = {"tuple_outputs": 0}
#: As the zoo tests: batch-norm and attention models train on 4,096 images, the others on 1,024.
TRAIN_IMAGES = {"resnet": 4096, "mobilenetv3": 4096, "vit": 4096}


def measure(name: str, data: MNISTDataModule, folder: Path) -> dict:
    options = dict(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu")
    torch.manual_seed(0)
    model = ZOO[name]()
    L.Trainer(**options).fit(model, datamodule=data)
    callback = QuantizationAwareTraining(logits_output=LOGITS_OUTPUT.get(name))
    start = time.perf_counter()
    L.Trainer(callbacks=[callback], max_steps=8, **options).fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    test = data.split("test")
    images, labels = data.normalize(test.images[:512].unsqueeze(1)), test.labels[:512]
    fp32 = ZOO[name]()
    fp32.load_state_dict(model.state_dict())
    fp32.eval()
    args, kwargs = model.inputs(images)
    with torch.no_grad():
        int8_logits = model.predict_logits(images)
        again = [model.predict_logits(images) for _ in range(2)]
        fp32_accuracy = (fp32.predict_logits(images).argmax(1) == labels).float().mean().item()
        path = callback.save(folder / f"{name}.pt2")
        output = torch.export.load(path).module()(*args, **kwargs)
        index = program_signature(callback.export(), LOGITS_OUTPUT.get(name)).logits_index
        reloaded = flat_outputs(output)[index]
    return {"model": name, "params": sum(p.numel() for p in model.parameters()),
            "fp32": fp32_accuracy, "int8": (int8_logits.argmax(1) == labels).float().mean().item(),
            "deterministic": all(torch.equal(a, int8_logits) for a in again),
            "reload_agreement": (reloaded.argmax(1) == int8_logits.argmax(1)).float().mean().item(),
            "callback_s": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="folder with MNIST/raw (default: the cache)")
    parser.add_argument("--models", nargs="*", default=list(ZOO), choices=list(ZOO))
    args = parser.parse_args(argv)
    print("| model | params | fp32 acc | int8 acc | drop (points) | deterministic | reloaded agree | callback s |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            data = MNISTDataModule(data_dir=args.data_dir, train_size=TRAIN_IMAGES.get(name, 1024), val_size=256,
                                   test_size=512, batch_size=64, augment_shift=0)
            row = measure(name, data, Path(folder))
            print(f"| {row['model']} | {row['params']:,} | {row['fp32']:.3f} | {row['int8']:.3f} | "
                  f"{(row['fp32'] - row['int8']) * 100:+.1f} | {row['deterministic']} | "
                  f"{row['reload_agreement']:.1%} | {row['callback_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
