"""Lightning's overhead: one epoch by a hand-written PyTorch loop against litquant's Trainer, alternating.

Every variant trains the same :class:`~litquant.model.Net` from the same seed on the same batches (the
data module's in-memory loader, the same shuffle, augmentation and normalisation), with AdamW and the
one-cycle schedule of :class:`~litquant.model.MNISTClassifier`, in fp32 on every CPU (litquant's Trainers get
``--trainer.precision=32-true``, where a CPU with native bf16 would choose bf16-mixed), then computes loss and
accuracy on the validation split. The variants:

- ``pytorch``: the hand-written loop (train epoch with running loss/accuracy, then a validation pass).
- ``lightning``: ``MNISTClassifier`` in a bare ``Trainer`` (no logger, checkpoints, progress bar, summary).
- ``litquant``: the Trainer as ``litquant fit`` builds it (CSV logger, model summary, progress bar, sanity
  check, both checkpoint callbacks tracking their metric) minus the files it writes at the end: the checkpoint
  callbacks keep nothing (``save_top_k=0``, no ``last.ckpt``) and the ``MetricsReport`` callback (table and
  plots) is left out. Writing those files is output the user asks for, not loop overhead.
- ``litquant+files``: exactly ``litquant fit``: the same plus the three checkpoint files and the report.

The timed region of a Trainer is the whole ``trainer.fit`` call (start-up, sanity check, epoch, validation,
teardown); the Trainer's construction is reported apart as ``setup_s``. Wall and process CPU seconds are both
recorded: on a busy machine the CPU seconds vary less. The data is read once, before::

    python benchmarks/lightning_overhead.py --data_dir ../shared/data --train_size 10000 --rounds 3
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import inspect
import io
import pstats
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L
import torch
from environment import environment, portable, result_name, save_results
from harness import add_data_arguments, alternate, datamodule, markdown_table, median, write_markdown
from lightning.pytorch.callbacks import Callback
from torch.nn import functional as F

from litquant.callbacks import MetricsReport
from litquant.cli.lightning import LitquantCLI
from litquant.data import MNISTDataModule, random_shift
from litquant.model import MNISTClassifier, Net

NAME = "lightning_overhead"
TARGET_RATIO = 1.03
PROFILE_GROUPS = ("lightning_utilities", "lightning", "torchmetrics", "tqdm", "matplotlib", "PIL", "jsonargparse",
                  "litquant", "torch")
DEFAULTS = argparse.Namespace(**{name: p.default for name, p in inspect.signature(MNISTClassifier).parameters.items()})


class FirstLoss(Callback):
    """Records the loss of the first training batch (one ``.item()`` per fit)."""

    def __init__(self) -> None:
        self.loss: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            self.loss = float(outputs["loss"])


def pytorch_epoch(dm: MNISTDataModule, seed: int) -> dict:
    """One epoch by hand, doing what ``MNISTClassifier`` + ``Trainer.fit`` do, then a validation pass."""
    hp = DEFAULTS
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    loader = dm.train_dataloader()
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=len(loader), pct_start=0.15)
    model.train()
    loss_sum, correct, seen, first_loss = torch.zeros(()), torch.zeros((), dtype=torch.long), 0, None
    for images, labels in loader:
        inputs = dm.normalize(random_shift(images, dm.augment_shift))
        logits = model(inputs)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if first_loss is None:
            first_loss = float(loss)
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
    model.eval()
    val_loss, val_correct, val_seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
    with torch.no_grad():
        for images, labels in dm.val_dataloader():
            logits = model(dm.normalize(images))
            val_loss += F.cross_entropy(logits, labels) * len(labels)
            val_correct += (logits.argmax(1) == labels).sum()
            val_seen += len(labels)
    return {
        "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started, "setup_s": 0.0,
        "first_loss": first_loss,
        "train_loss": float(loss_sum) / seen, "train_acc": float(correct) / seen,
        "val_loss": float(val_loss) / val_seen, "val_acc": float(val_correct) / val_seen,
    }


def bare_trainer(root: Path, seed: int) -> tuple[L.Trainer, MNISTClassifier, FirstLoss]:
    L.seed_everything(seed, verbose=False)
    probe = FirstLoss()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=root, callbacks=[probe])
    return trainer, MNISTClassifier(), probe


def cli_trainer(root: Path, seed: int, files: bool) -> tuple[L.Trainer, MNISTClassifier, FirstLoss]:
    # The hand-written loop's precision (fp32) on every CPU: what is compared is the loop's overhead, not the
    # precision litquant would choose on a CPU with native bf16 (training_throughput.py measures that).
    args = ["--trainer.max_epochs=1", f"--trainer.default_root_dir={root}", f"--seed_everything={seed}",
            "--trainer.precision=32-true"]
    if not files:
        args += ["--checkpoint_val_loss.save_top_k=0", "--checkpoint_val_loss.save_last=false",
                 "--checkpoint_val_acc.save_top_k=0"]
    cli = LitquantCLI(args=args, run=False)
    if not files:
        cli.trainer.callbacks[:] = [cb for cb in cli.trainer.callbacks if not isinstance(cb, MetricsReport)]
    probe = FirstLoss()
    cli.trainer.callbacks.append(probe)
    return cli.trainer, cli.model, probe


def lightning_epoch(dm: MNISTDataModule, build, **kwargs) -> dict:
    with tempfile.TemporaryDirectory(prefix="litquant-overhead-") as root:
        started = time.perf_counter()
        trainer, model, probe = build(Path(root), **kwargs)
        setup_s = time.perf_counter() - started
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.fit(model, datamodule=dm)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {"seconds": seconds, "cpu_s": cpu_s, "setup_s": setup_s, "first_loss": probe.loss,
            **{k: metrics.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}}


def profile_fit(dm: MNISTDataModule, seed: int, top: int = 20) -> dict:
    """cProfile of building and fitting one ``litquant+files`` Trainer: own time per library, and the functions
    with the most own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    lightning_epoch(dm, cli_trainer, seed=seed, files=True)
    profiler.disable()
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = collections.Counter()
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():
        if filename == "~":  # C functions: torch operators and Python built-ins
            group = "torch operators (C++)" if "torch" in function else "python built-ins"
        else:
            group = next((name for name in PROFILE_GROUPS if f"/{name}/" in filename), "other python")
        groups[group] += own
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(top)
    framework = sum(groups[name] for name in ("lightning", "lightning_utilities", "torchmetrics", "tqdm"))
    return {"own_seconds_by_library": dict(groups.most_common()), "total_s": stats.total_tt,
            "framework_s": framework, "framework_fraction": framework / stats.total_tt,
            "top_functions": portable(out.getvalue())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=10000)
    parser.add_argument("--batch_size", type=int, default=MNISTDataModule().batch_size)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true",
                        help="also profile one litquant+files fit (cProfile) and store the breakdown")
    parser.add_argument("--name", default=result_name(NAME), help="results file name (default: <name>.<cpu kind>)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm = datamodule(args, batch_size=args.batch_size)
    variants = {
        "pytorch": lambda: pytorch_epoch(dm, args.seed),
        "lightning": lambda: lightning_epoch(dm, bare_trainer, seed=args.seed),
        "litquant": lambda: lightning_epoch(dm, cli_trainer, seed=args.seed, files=False),
        "litquant+files": lambda: lightning_epoch(dm, cli_trainer, seed=args.seed, files=True),
    }
    lightning_epoch(dm, bare_trainer, seed=args.seed)  # warm-up: first-call costs (imports, allocator) for no one
    runs = alternate(variants, args.rounds)
    base = median(r["seconds"] for r in runs["pytorch"])
    base_cpu = median(r["cpu_s"] for r in runs["pytorch"])
    summary = {}
    for name, results in runs.items():
        seconds = median(r["seconds"] for r in results)
        paired = [r["seconds"] / p["seconds"] for r, p in zip(results, runs["pytorch"], strict=True)]
        summary[name] = {
            "median_s": seconds, "ratio": seconds / base, "median_paired_ratio": median(paired),
            "extra_s": seconds - base, "median_cpu_s": median(r["cpu_s"] for r in results),
            "cpu_ratio": median(r["cpu_s"] for r in results) / base_cpu,
            "setup_s": median(r["setup_s"] for r in results),
            "first_loss": results[0]["first_loss"], "final_train_loss": results[0]["train_loss"],
            "val_acc": results[0]["val_acc"],
        }
    first = {name: s["first_loss"] for name, s in summary.items()}
    final = {name: s["final_train_loss"] for name, s in summary.items()}
    checks = {
        "ratio_litquant": summary["litquant"]["ratio"], "cpu_ratio_litquant": summary["litquant"]["cpu_ratio"],
        "target_ratio": TARGET_RATIO,
        "met": summary["litquant"]["ratio"] <= TARGET_RATIO,
        "first_loss_spread": max(first.values()) - min(first.values()),
        "final_train_loss_spread": max(final.values()) - min(final.values()),
        **{f"{metric}_spread": max(r[0][metric] for r in runs.values()) - min(r[0][metric] for r in runs.values())
           for metric in ("train_acc", "val_loss", "val_acc")},
    }
    result = {
        "settings": {"train_samples": len(dm.split("train")), "val_samples": len(dm.split("val")),
                     "batch_size": args.batch_size, "seed": args.seed, "threads": torch.get_num_threads(),
                     "rounds": args.rounds},
        "summary": summary, "checks": checks, "runs": runs,
    }
    if args.profile:
        result["profile"] = profile_fit(dm, args.seed)
        print(result["profile"]["top_functions"])
    save_results(args.name, result)
    rows = [(name, s["median_s"], s["ratio"], s["median_paired_ratio"], s["extra_s"], s["median_cpu_s"], s["cpu_ratio"],
             s["setup_s"], s["first_loss"], s["final_train_loss"], s["val_acc"]) for name, s in summary.items()]
    table = markdown_table(["variant", "median fit s", "ratio of medians", "median of per-round ratios", "extra s",
                            "median CPU s", "CPU ratio", "setup s", "first-batch loss", "epoch train_loss",
                            "val_acc"], rows)
    verdict = "met" if checks["met"] else "missed"
    body = (f"One epoch on {result['settings']['train_samples']} training samples (batch {args.batch_size}) plus "
            f"validation on {result['settings']['val_samples']}; medians of {args.rounds} alternating rounds.\n\n"
            f"{table}\nTarget litquant/pytorch <= {TARGET_RATIO}: **{verdict}** ({checks['ratio_litquant']:.3f}). "
            f"First-batch losses differ by {checks['first_loss_spread']:.2g}, epoch train losses by "
            f"{checks['final_train_loss_spread']:.2g}.\n")
    if args.profile:
        breakdown = ", ".join(f"{k} {v:.2f} s" for k, v in result["profile"]["own_seconds_by_library"].items())
        profile = result["profile"]
        body += (f"\ncProfile of building and fitting one `litquant+files` Trainer, own time by library (inflated by "
                 f"profiling): {breakdown}. Lightning, torchmetrics and tqdm together: {profile['framework_s']:.2f} s "
                 f"of {profile['total_s']:.1f} s ({profile['framework_fraction']:.1%}).\n")
    write_markdown(args.name, "Lightning's overhead", body, environment())
    print(table)


if __name__ == "__main__":
    main()
