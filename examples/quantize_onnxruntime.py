"""Chapter 7, method 4: ONNX Runtime static int8 quantization.

Export the fp32 network to ONNX, quantize it with ONNX Runtime (QDQ format, calibrated on training batches;
the weight format is chosen by a check against fp32, so accuracy holds on CPUs without VNNI too), then run
the ``.onnx`` file with plain PyTorch tensors and with a Trainer::

    python examples/quantize_onnxruntime.py --ckpt_path out/examples/ckpt/checkpoints/final.ckpt --out out/examples/onnx
"""

from __future__ import annotations

import litquant.quiet  # noqa: F401  first: library messages a user cannot act on stay out of the output

import argparse
from pathlib import Path

import lightning.pytorch as L

from litquant.artifacts.description import describe
from litquant.artifacts.files import sidecar_path
from litquant.artifacts.loading import load_artifact
from litquant.artifacts.saving import save_onnx
from litquant.checkpoints import checkpoint_argument, load_classifier
from litquant.data import MNISTDataModule
from litquant.evaluation import ArtifactModule, evaluate
from litquant.quantization.config import QuantizeConfig
from litquant.quantization.export import export_onnx
from litquant.quantization.onnx_runtime import quantize_onnxruntime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, type=checkpoint_argument,
                        help="the trained fp32 checkpoint: a .ckpt path, or `last` (the newest run's last.ckpt)")
    parser.add_argument("--data_dir", default=None, help="folder with the MNIST .gz files (default: the cache)")
    parser.add_argument("--train_size", type=int, default=None, help="cap on training samples (default: all)")
    parser.add_argument("--test_size", type=int, default=None, help="cap on test samples (default: all 10,000)")
    parser.add_argument("--calibration_batches", type=int, default=32, help="training batches to calibrate on")
    parser.add_argument("--out", default="out/examples/onnx", help="folder for the .onnx files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    data = MNISTDataModule(data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size,
                           batch_size=256)
    net = load_classifier(args.ckpt_path).model.eval()
    # the description (input spec, checkpoint hash...) goes inside the file: the loader reads it from there
    fp32 = save_onnx(export_onnx(net, out / "fp32.onnx"), out / "fp32.onnx",
                     describe("onnxruntime-fp32", "fp32", datamodule=data, checkpoint=args.ckpt_path))
    print(f"fp32 (ONNX Runtime): test_acc {evaluate(load_artifact(fp32), data):.4f}")

    int8 = out / "int8.onnx"
    choice = quantize_onnxruntime(fp32, int8, data, QuantizeConfig(calibration_batches=args.calibration_batches))
    save_onnx(int8, int8, describe("onnxruntime", "int8", datamodule=data, checkpoint=args.ckpt_path,
                                   onnxruntime=choice))
    print(f"saved {int8} ({int8.stat().st_size / 1e6:.2f} MB); the weight format chosen is in {sidecar_path(int8)}")

    model = load_artifact(int8)  # an ONNX Runtime session behind a torch-tensor interface
    print(f"int8 (plain PyTorch tensors): test_acc {evaluate(model, data):.4f}")
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(ArtifactModule(model), datamodule=data)


if __name__ == "__main__":
    main()
