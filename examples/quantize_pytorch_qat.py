"""Chapter 7, method 2: PyTorch quantization-aware training (PT2E) in a plain PyTorch loop.

Capture the fp32 network in training mode, insert fake quantization, fine-tune a few steps so the weights
adapt to int8 rounding, convert to int8, then save, reload and run it::

    python examples/quantize_pytorch_qat.py --ckpt_path out/examples/ckpt/checkpoints/final.ckpt --out out/examples/qat
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L
import torch

from litquant.artifacts.loading import load_artifact
from litquant.checkpoints import checkpoint_argument, load_classifier
from litquant.data import MNISTDataModule
from litquant.evaluation import ArtifactModule, evaluate
from litquant.quantization.calibration import quantizer_for
from litquant.quantization.pt2e import artifact_meta, capture, convert_to_program, prepare_qat, save_program


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, type=checkpoint_argument,
                        help="the trained fp32 checkpoint: a .ckpt path, or `last` (the newest run's last.ckpt)")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--max_steps", type=int, default=100, help="fine-tuning steps (batches of 256)")
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate")
    parser.add_argument("--no_compile", action="store_true", help="run the exported graph without inductor")
    parser.add_argument("--out", default="out/examples/qat", help="folder for qat.pt2 and qat.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(0)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size,
                           batch_size=256)
    net = load_classifier(args.ckpt_path).model.eval()
    print(f"fp32 (plain PyTorch): test_acc {evaluate(net, data):.4f}")

    # Quantize: capture in training mode -> fake quantization -> fine-tune -> int8 graph.
    example = (torch.zeros(2, 1, 28, 28),)
    # prepare_qat leaves the graph in training mode: dropout on, with the model's own probabilities
    prepared = prepare_qat(capture(net, example, train=True), quantizer_for(is_qat=True))
    optimizer = torch.optim.AdamW(prepared.parameters(), lr=args.lr)
    for images, labels in data.normalized_batches("train", limit=args.max_steps, shuffle=True):
        loss = torch.nn.functional.cross_entropy(prepared(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    program = convert_to_program(prepared, example)

    path = save_program(program, Path(args.out) / "qat.pt2", artifact_meta(
        "qat", "int8", datamodule=data, checkpoint=args.ckpt_path, fine_tuning={"max_steps": args.max_steps}))
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    model = load_artifact(path, compile=not args.no_compile)
    print(f"int8 (plain PyTorch): test_acc {evaluate(model, data):.4f}")
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(ArtifactModule(model), datamodule=data)


if __name__ == "__main__":
    main()
