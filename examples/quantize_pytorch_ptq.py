"""Chapter 7, method 1: PyTorch post-training quantization (PT2E, static int8), step by step.

Capture the trained fp32 network with ``torch.export``, insert observers for torchao's x86 quantizer, run a
few training batches through it (calibration), convert to int8, then save, reload and run it::

    python examples/quantize_pytorch_ptq.py --ckpt_path out/examples/ckpt/checkpoints/final.ckpt --out out/examples/ptq
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
import torch
from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

from litquant.artifacts.loading import load_artifact
from litquant.checkpoints import checkpoint_argument, load_classifier
from litquant.data import MNISTDataModule
from litquant.evaluation import ArtifactModule, evaluate
from litquant.quantization.calibration import quantizer_for
from litquant.quantization.pt2e import artifact_meta, capture, convert_to_program, save_program


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, type=checkpoint_argument,
                        help="the trained fp32 checkpoint: a .ckpt path, or `last` (the newest run's last.ckpt)")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--calibration_batches", type=int, default=32, help="training batches to calibrate on")
    parser.add_argument("--no_compile", action="store_true", help="run the exported graph without inductor")
    parser.add_argument("--out", default="out/examples/ptq", help="folder for ptq.pt2 and ptq.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size,
                           batch_size=256)
    net = load_classifier(args.ckpt_path).model.eval()  # the plain nn.Module inside the LightningModule
    print(f"fp32 (plain PyTorch): test_acc {evaluate(net, data):.4f}")

    # Quantize: capture -> observers -> calibrate on training batches -> int8 graph.
    example = (torch.zeros(2, 1, 28, 28),)
    prepared = prepare_pt2e(capture(net, example), quantizer_for(is_qat=False))
    with torch.no_grad():
        for images, _ in data.normalized_batches("train", limit=args.calibration_batches, shuffle=True):
            prepared(images)
    program = convert_to_program(prepared, example)  # torch.export program, dynamic batch, int8 weights only

    # Save one self-describing file (+ a readable JSON copy), reload it from the file alone, run it both ways.
    path = save_program(program, Path(args.out) / "ptq.pt2", artifact_meta(
        "ptq", "int8", datamodule=data, checkpoint=args.ckpt_path, calibration_batches=args.calibration_batches))
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    model = load_artifact(path, compile=not args.no_compile)  # compiled with inductor: real int8 kernels
    print(f"int8 (plain PyTorch): test_acc {evaluate(model, data):.4f}")
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(ArtifactModule(model), datamodule=data)


if __name__ == "__main__":
    main()
