"""Training throughput: litquant's default training against a tutorial-style baseline, at equal accuracy.

Both train :class:`~litquant.model.MNISTClassifier` (same recipe: AdamW, one-cycle schedule) in a Lightning
``Trainer`` for one epoch over the same training samples and report the validation accuracy reached on the
same validation split. What differs is what the original tutorial did:

- ``tutorial-style``: a per-sample ``Dataset`` that turns each image into a PIL image, then a normalised float
  tensor (torchvision's ``ToTensor`` + ``Normalize``), batch 64, the default collation, no augmentation.
- ``litquant``: the Trainer as ``litquant fit`` builds it, the data module's in-memory batches (uint8,
  sliced whole, normalised per batch), its default batch size and augmentation.

Samples/s are measured over the training epoch only (first batch to last, validation excluded), medians of
alternating rounds. Then each factor is measured on its own with a bare training step over in-memory batches
(batch size, the per-sample pipeline, ``channels_last``, ``torch.compile``, threads), and the achieved
GFLOP/s is set against the CPU's fp32 peak::

    python benchmarks/training_throughput.py --data_dir ../shared/data --train_size 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, alternate, datamodule, markdown_table, median, write_markdown
from lightning.pytorch.callbacks import Callback
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from litquant.cli.lightning import LitquantCLI
from litquant.data import MNISTDataModule, random_shift
from litquant.model import MNISTClassifier, Net

NAME = "training_throughput"
TARGET_SPEEDUP = 1.5
FMA_FLOPS_PER_CYCLE = 32  # AVX2: two 256-bit FMA units x 8 fp32 lanes x 2 FLOPs


class TutorialStyleMNIST(Dataset):
    """One sample at a time, as torchvision's ``MNIST`` with ``ToTensor()`` and ``Normalize`` gives it."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float) -> None:
        self.images, self.labels, self.mean, self.std = images.numpy(), labels.tolist(), mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index], mode="L")
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).float().div(255).unsqueeze(0)
        return (tensor - self.mean) / self.std, self.labels[index]


def tutorial_style_loader(dm: MNISTDataModule, split: str, batch_size: int = 64, shuffle: bool = False) -> DataLoader:
    data = dm.split(split)
    dataset = TutorialStyleMNIST(data.images, data.labels, dm.spec.mean, dm.spec.std)
    generator = torch.Generator().manual_seed(dm.seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


class EpochTimer(Callback):
    """Seconds and samples of the training epoch, from its first batch to its last (validation excluded)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.seconds = 0.0
        self.samples = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.samples += len(batch[1])
        self.seconds = time.perf_counter() - self.started


def fit_epoch(build: Callable[[Path, EpochTimer], tuple], seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="litquant-throughput-") as root:
        timer = EpochTimer()
        trainer, model, fit_kwargs = build(Path(root), timer, seed)
        started = time.perf_counter()
        trainer.fit(model, **fit_kwargs)
        fit_s = time.perf_counter() - started
    return {"samples_per_s": timer.samples / timer.seconds, "epoch_s": timer.seconds, "fit_s": fit_s,
            "samples": timer.samples, "val_acc": float(trainer.callback_metrics["val_acc"])}


def tutorial_style(dm: MNISTDataModule) -> Callable:
    def build(root: Path, timer: EpochTimer, seed: int):
        L.seed_everything(seed, verbose=False)
        trainer = L.Trainer(max_epochs=1, default_root_dir=root, callbacks=[timer], enable_progress_bar=False,
                            enable_model_summary=False, logger=False, enable_checkpointing=False)
        loaders = {"train_dataloaders": tutorial_style_loader(dm, "train", shuffle=True),
                   "val_dataloaders": tutorial_style_loader(dm, "val")}
        return trainer, MNISTClassifier(), loaders
    return build


def litquant_default(dm: MNISTDataModule) -> Callable:
    def build(root: Path, timer: EpochTimer, seed: int):
        cli = LitquantCLI(args=["--trainer.max_epochs=1", f"--trainer.default_root_dir={root}",
                                f"--seed_everything={seed}", "--trainer.enable_progress_bar=false"], run=False)
        cli.trainer.callbacks.append(timer)
        return cli.trainer, cli.model, {"datamodule": dm}
    return build


# -- one factor at a time ------------------------------------------------------------------------------------------
def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> None:
    """One plain training step: cross-entropy, backward, optimizer step."""
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def step_rate(dm: MNISTDataModule, batch_size: int, samples: int, *, per_sample: bool = False,
              channels_last: bool = False, compiled: bool = False, threads: int | None = None,
              no_pipeline: bool = False) -> Callable:
    """A closure timing plain training steps over ``samples`` samples; the model is built (and compiled) once.
    ``no_pipeline`` feeds one ready, normalised batch again and again: the ceiling that no data pipeline beats."""
    torch.manual_seed(dm.seed)
    model = Net()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def batches():
        if no_pipeline:
            images, labels = next(iter(DataLoader(dm.split("train"), batch_size=batch_size, collate_fn=lambda b: b)))
            ready = dm.normalize(images)
            while True:
                yield ready, labels
        if per_sample:
            for images, labels in tutorial_style_loader(dm, "train", batch_size, shuffle=True):
                yield images, labels
            return
        loader = DataLoader(dm.split("train"), batch_size=batch_size, shuffle=True, collate_fn=lambda b: b,
                            generator=torch.Generator().manual_seed(dm.seed))
        for images, labels in loader:
            yield dm.normalize(random_shift(images, dm.augment_shift)), labels

    def train(limit: int) -> tuple[int, float]:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or previous)
        seen, started = 0, time.perf_counter()
        try:
            for images, labels in batches():
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                train_step(step_model, optimizer, images, labels)
                seen += len(labels)
                if seen >= limit:
                    break
        finally:
            torch.set_num_threads(previous)
        return seen, time.perf_counter() - started

    started = time.perf_counter()
    train(2 * batch_size)  # warm-up (and compilation)
    warmup_s = time.perf_counter() - started

    def run() -> dict:
        seen, seconds = train(samples)
        return {"samples_per_s": seen / seconds, "warmup_s": warmup_s}
    return run


def step_breakdown(batch_size: int, steps: int = 5) -> dict:
    """Share of a training step's time (torch.profiler, self CPU time) in each kind of operator."""
    from torch.profiler import profile

    torch.manual_seed(0)
    model, images, labels = Net(), torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    train_step(model, optimizer, images, labels)
    with profile() as prof:
        for _ in range(steps):
            train_step(model, optimizer, images, labels)
    groups = {"convolution forward": ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward"),
              "convolution backward": ("aten::convolution_backward",),
              "linear layers": ("aten::mm", "aten::addmm"),
              "dropout": ("aten::bernoulli_",),
              "ReLU and max-pool": ("aten::clamp_min", "aten::threshold_backward", "aten::max_pool2d_with_indices",
                                    "aten::max_pool2d_with_indices_backward")}
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {name: sum(e.self_cpu_time_total for e in events if e.key in keys) / total
              for name, keys in groups.items()}
    shares["everything else"] = 1 - sum(shares.values())
    return shares


def flops_per_sample() -> dict:
    """Forward and training-step (forward + backward) FLOPs of one sample, counted by ``FlopCounterMode``."""
    model = Net()
    x = torch.randn(1, 1, 28, 28)
    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as training:
        F.cross_entropy(model(x), torch.tensor([0])).backward()
    return {"forward": forward.get_total_flops(), "training": training.get_total_flops()}


def cpu_peak_gflops() -> dict:
    """fp32 peak: cores x clock x 32 FLOPs/cycle (AVX2 FMA); the clock is ``cpu MHz`` of ``/proc/cpuinfo``."""
    mhz = []
    with contextlib.suppress(OSError):
        mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
    cores = os.cpu_count() or 1
    ghz = (sum(mhz) / len(mhz) / 1000) if mhz else None
    return {"cores": cores, "ghz": ghz, "flops_per_cycle": FMA_FLOPS_PER_CYCLE,
            "peak_gflops": cores * ghz * FMA_FLOPS_PER_CYCLE if ghz else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--factor_samples", type=int, default=2048, help="samples per factor measurement")
    parser.add_argument("--factors", default="all", help="'all', 'none' or a comma-separated subset")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    dm = datamodule(args)

    runs = alternate({"tutorial-style": lambda: fit_epoch(tutorial_style(dm), args.seed),
                      "litquant": lambda: fit_epoch(litquant_default(dm), args.seed)}, args.rounds)
    summary = {name: {"samples_per_s": median(r["samples_per_s"] for r in results),
                      "val_acc": median(r["val_acc"] for r in results),
                      "samples": results[0]["samples"]} for name, results in runs.items()}
    speedup = summary["litquant"]["samples_per_s"] / summary["tutorial-style"]["samples_per_s"]

    n, b = args.factor_samples, dm.batch_size
    factors = {
        "per-sample pipeline, batch 64": dict(batch_size=64, per_sample=True),
        "in-memory, batch 64": dict(batch_size=64),
        f"in-memory, batch {b} (default)": dict(batch_size=b),
        f"in-memory, batch {2 * b}": dict(batch_size=2 * b),
        f"in-memory, batch {b}, channels_last": dict(batch_size=b, channels_last=True),
        f"in-memory, batch {b}, torch.compile": dict(batch_size=b, compiled=True),
        f"in-memory, batch {b}, 1 thread": dict(batch_size=b, threads=1),
        f"no data pipeline (one ready batch reused), batch {b}": dict(batch_size=b, no_pipeline=True),
    }
    if args.factors != "all":
        wanted = set() if args.factors == "none" else {f.strip() for f in args.factors.split(",")}
        factors = {name: kw for name, kw in factors.items() if any(w in name for w in wanted)}
    factor_runs = alternate({name: step_rate(dm, samples=n, **kw) for name, kw in factors.items()}, args.rounds)
    factor_summary = {name: {"samples_per_s": median(r["samples_per_s"] for r in results),
                             "warmup_s": results[0]["warmup_s"]} for name, results in factor_runs.items()}

    flops, peak, breakdown = flops_per_sample(), cpu_peak_gflops(), step_breakdown(b)
    for entry in (*summary.values(), *factor_summary.values()):
        entry["gflops"] = entry["samples_per_s"] * flops["training"] / 1e9
        entry["fraction_of_peak"] = entry["gflops"] / peak["peak_gflops"] if peak["peak_gflops"] else None
    checks = {"speedup": speedup, "target_speedup": TARGET_SPEEDUP, "met": speedup >= TARGET_SPEEDUP,
              "val_acc_difference": summary["litquant"]["val_acc"] - summary["tutorial-style"]["val_acc"]}
    result = {
        "settings": {"train_samples": len(dm.split("train")), "val_samples": len(dm.split("val")),
                     "batch_size": b, "seed": args.seed, "threads": torch.get_num_threads(), "rounds": args.rounds,
                     "factor_samples": n},
        "flops_per_sample": flops, "cpu_peak": peak, "step_breakdown": breakdown, "summary": summary, "checks": checks,
        "factors": factor_summary,
        "runs": runs, "factor_runs": factor_runs,
    }
    save_results(args.name, result)

    table = markdown_table(["training", "samples/s", "val_acc after 1 epoch", "GFLOP/s", "of fp32 peak"],
                           [(name, s["samples_per_s"], s["val_acc"], s["gflops"], s["fraction_of_peak"])
                            for name, s in summary.items()])
    factor_table = markdown_table(["training step (no Trainer)", "samples/s", "GFLOP/s", "of fp32 peak",
                                   "warm-up s"],
                                  [(name, s["samples_per_s"], s["gflops"], s["fraction_of_peak"], s["warmup_s"])
                                   for name, s in factor_summary.items()])
    breakdown_table = markdown_table(["operators", "share of a training step"],
                                     [(name, f"{share:.0%}") for name, share in breakdown.items()])
    ceiling = next((s["samples_per_s"] for name, s in factor_summary.items() if name.startswith("no data")), None)
    ceiling_line = ""
    if ceiling:
        ceiling_ratio = ceiling / summary["tutorial-style"]["samples_per_s"]
        conv_share = breakdown["convolution forward"] + breakdown["convolution backward"]
        ceiling_line = (f"With no data pipeline at all, a bare training step runs {ceiling:.0f} samples/s, "
                        f"{ceiling_ratio:.2f}x the tutorial-style training"
                        + (f": below the target, so no change to data loading can reach it here; the convolutions "
                           f"take {conv_share:.0%} of each step." if ceiling_ratio < TARGET_SPEEDUP else ".")
                        + "\n")
    verdict = "met" if checks["met"] else "missed"
    body = (f"One epoch over {result['settings']['train_samples']} training samples, val_acc on "
            f"{result['settings']['val_samples']}; medians of {args.rounds} alternating rounds.\n\n{table}\n"
            f"Speed-up litquant / tutorial-style: **{speedup:.2f}x** (target >= {TARGET_SPEEDUP}: **{verdict}**), "
            f"val_acc difference {checks['val_acc_difference']:+.4f}.\n\n"
            f"Factors one at a time ({n} samples each, plain training steps, medians):\n\n{factor_table}\n"
            f"FLOPs per sample (FlopCounterMode): forward {flops['forward'] / 1e6:.1f} M, training step "
            f"{flops['training'] / 1e6:.1f} M. fp32 peak: {peak['cores']} cores x {peak['ghz']:.2f} GHz x "
            f"{FMA_FLOPS_PER_CYCLE} FLOPs/cycle = {peak['peak_gflops']:.0f} GFLOP/s.\n\n"
            f"Where the time of a training step goes (batch {b}, torch.profiler):\n\n{breakdown_table}\n"
            f"{ceiling_line}")
    write_markdown(args.name, "Training throughput", body, environment())
    print(table + "\n" + factor_table)


if __name__ == "__main__":
    main()
