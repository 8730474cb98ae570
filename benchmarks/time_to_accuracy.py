"""Time to accuracy: wall time until a model reaches a test accuracy (99.0%), litquant's recipe against the
original tutorial's, in one run on one machine.

- ``litquant``: ``litquant fit`` as a user runs it: its default recipe (optimizer, one-cycle schedule, batch size,
  augmentation, number of epochs, and the precision it chooses for this CPU); ``--litquant_epochs`` sets
  ``--trainer.max_epochs`` (the span of its one-cycle schedule) and ``--litquant_args`` adds options, for trying
  other recipes.
- ``tutorial``: the original tutorial's recipe: Adam, learning rate 1e-3 held constant, batch 64, fp32, no
  augmentation, its data pipeline (one PIL image at a time, as ``training_throughput.py``'s ``tutorial-style``),
  in a Lightning ``Trainer`` for at most ``--max_epochs``.

A callback measures test accuracy (all test images unless ``--test_size``) every ``--eval_every`` of an epoch and
at each epoch's end, with the clock stopped while it does, and stops the fit as soon as the target is reached, or
when the recipe's time passes ``--time_cap_s``. The clock runs from ``trainer.fit`` to that evaluation: start-up,
training, validation and the files each recipe writes count; reading the MNIST files (done once, before) and the
test evaluations do not. "Not reached" is reported as such, with the best accuracy seen::

    python benchmarks/time_to_accuracy.py --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as L
import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, datamodule, markdown_table, write_markdown
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from training_throughput import tutorial_style_loader

from litquant.cli.lightning import LitquantCLI
from litquant.cpu import cpu_info
from litquant.data import MNISTDataModule
from litquant.evaluation import evaluate
from litquant.model import MNISTClassifier

NAME = "time_to_accuracy"
TARGET_SPEEDUP = 4.0


class TestAccuracyClock(Callback):
    """Test accuracy every ``every_steps`` training steps and at each epoch's end; stops the fit at ``target``
    or past ``time_cap_s``. Its clock starts with :meth:`start` and leaves out its own evaluations."""

    def __init__(self, test_data: MNISTDataModule, target: float, every_steps: int, time_cap_s: float) -> None:
        self.test_data, self.target = test_data, target
        self.every_steps, self.time_cap_s = every_steps, time_cap_s
        self.started = self.cpu_started = 0.0
        self.paused_s = self.cpu_paused_s = 0.0
        self.samples = 0
        self.evaluations: list[dict] = []
        self.reached: dict | None = None
        self.capped = False

    def start(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started - self.paused_s

    def cpu_elapsed(self) -> float:
        """CPU seconds of this process (all its threads): what the recipe cost, whatever else the cores ran."""
        return time.process_time() - self.cpu_started - self.cpu_paused_s

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.samples += len(batch[1])
        last = batch_idx + 1 == trainer.num_training_batches
        if last or (batch_idx + 1) % self.every_steps == 0:
            epochs = trainer.current_epoch + (batch_idx + 1) / trainer.num_training_batches
            self.evaluate(trainer, pl_module, epochs)

    def evaluate(self, trainer, pl_module, epochs: float) -> None:
        seconds, cpu_seconds = self.elapsed(), self.cpu_elapsed()
        paused, cpu_paused = time.perf_counter(), time.process_time()
        was_training = pl_module.training
        accuracy = evaluate(pl_module, self.test_data, "test", batch_size=1000)
        pl_module.train(was_training)
        self.evaluations.append({"epochs": round(epochs, 3), "samples": self.samples, "seconds": round(seconds, 2),
                                 "cpu_seconds": round(cpu_seconds, 2), "test_acc": accuracy})
        print(f"  {epochs:.2f} epochs, {self.samples} samples, {seconds:.1f} s ({cpu_seconds:.1f} CPU s): "
              f"test_acc {accuracy:.4f} (load {_load_average()})", flush=True)
        if accuracy >= self.target and self.reached is None:
            self.reached = self.evaluations[-1]
            trainer.should_stop = True
        elif seconds > self.time_cap_s:
            self.capped = trainer.should_stop = True
        self.paused_s += time.perf_counter() - paused
        self.cpu_paused_s += time.process_time() - cpu_paused


def warm_up(batch_sizes=(64, 128)) -> None:
    """A few training steps at each batch size, so that the first recipe does not pay the process's one-time
    costs (thread pool, kernel selection) alone."""
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters())
    for batch_size in batch_sizes:
        for _ in range(3):
            loss = model(torch.randn(batch_size, 1, 28, 28)).logsumexp(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def litquant_recipe(args: argparse.Namespace, root: Path, extra: str) -> tuple:
    """``litquant fit`` with its defaults (and ``extra`` options), built as the command builds it."""
    data = [f"--data.data_dir={args.data_dir}"] if args.data_dir else []
    sizes = [f"--data.{k}={getattr(args, k)}" for k in ("train_size", "test_size") if getattr(args, k)]
    epochs = [f"--trainer.max_epochs={args.litquant_epochs}"] if args.litquant_epochs else []
    cli = LitquantCLI(args=[*epochs, f"--seed_everything={args.seed}",
                            f"--data.seed={args.seed}", f"--data.val_size={args.val_size}", *data, *sizes,
                            f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false",
                            *extra.split()], run=False)
    dm: MNISTDataModule = cli.datamodule
    dm.prepare_data()
    dm.setup("fit")  # the files are read before the clock starts, as for the tutorial's recipe
    hp = cli.model.hparams
    recipe = {"optimizer": hp.optimizer, "lr": hp.lr, "weight_decay": hp.weight_decay, "schedule": hp.scheduler,
              "batch_size": dm.batch_size, "augment_shift": dm.augment_shift, "max_epochs": cli.trainer.max_epochs,
              "precision": str(cli.trainer.precision), "channels_last": bool(hp.get("channels_last")),
              "extra_args": extra}
    return cli.trainer, cli.model, {"datamodule": dm}, recipe


def tutorial_recipe(args: argparse.Namespace, root: Path, dm: MNISTDataModule) -> tuple:
    """The original tutorial's recipe on the same splits."""
    trainer = L.Trainer(max_epochs=args.max_epochs, precision="32-true", default_root_dir=root,
                        logger=CSVLogger(root), enable_progress_bar=False, enable_model_summary=False)
    model = MNISTClassifier(optimizer="adam", lr=1e-3, weight_decay=0.0, scheduler="none")
    loaders = {"train_dataloaders": tutorial_style_loader(dm, "train", shuffle=True),
               "val_dataloaders": tutorial_style_loader(dm, "val")}
    recipe = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "none", "batch_size": 64,
              "augment_shift": 0, "max_epochs": args.max_epochs, "precision": "32-true", "channels_last": False}
    return trainer, model, loaders, recipe


def run_recipe(name: str, build: Callable[[Path], tuple], test_data: MNISTDataModule,
               args: argparse.Namespace) -> dict:
    print(f"{name}:", flush=True)
    with tempfile.TemporaryDirectory(prefix="litquant-tta-") as root:
        L.seed_everything(args.seed, verbose=False)
        trainer, model, fit_kwargs, recipe = build(Path(root))
        steps_per_epoch = math.ceil((args.train_size or 55000) / recipe["batch_size"])
        clock = TestAccuracyClock(test_data, args.target, max(1, round(args.eval_every * steps_per_epoch)),
                                  args.time_cap_s)
        trainer.callbacks.append(clock)
        clock.start()
        trainer.fit(model, **fit_kwargs)
        fit_s, fit_cpu_s = clock.elapsed(), clock.cpu_elapsed()
    best = max(clock.evaluations, key=lambda e: e["test_acc"], default=None)
    return {"recipe": recipe, "reached": clock.reached is not None,
            "seconds_to_target": clock.reached["seconds"] if clock.reached else None,
            "cpu_seconds_to_target": clock.reached["cpu_seconds"] if clock.reached else None,
            "epochs_to_target": clock.reached["epochs"] if clock.reached else None,
            "samples_to_target": clock.reached["samples"] if clock.reached else None,
            "stopped_by_time_cap": clock.capped, "fit_s": round(fit_s, 2), "fit_cpu_s": round(fit_cpu_s, 2),
            "best_test_acc": best["test_acc"] if best else None, "evaluations": clock.evaluations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=0, test_size=0)
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--litquant_epochs", type=int, help="litquant fit's --trainer.max_epochs (default: its own)")
    parser.add_argument("--litquant_args", default="", help="extra `litquant fit` options, space-separated")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                        help="also run `litquant fit` with these options (repeatable), e.g. "
                             "'short=--trainer.max_epochs=1 --data.augment_shift=0'")
    parser.add_argument("--max_epochs", type=int, default=6, help="the tutorial recipe's cap, in epochs")
    parser.add_argument("--time_cap_s", type=float, default=1800, help="each recipe stops after this long")
    parser.add_argument("--eval_every", type=float, default=0.25, help="test evaluations every this many epochs")
    parser.add_argument("--recipes", default="litquant,tutorial", help="comma-separated, run in this order")
    parser.add_argument("--name", default=result_name(NAME), help="results file name")
    args = parser.parse_args()

    load_before = _load_average()
    dm = datamodule(args, augment_shift=0)
    builders = {"litquant": lambda root: litquant_recipe(args, root, args.litquant_args),
                "tutorial": lambda root: tutorial_recipe(args, root, dm)}
    for variant in args.variant:
        name, _, options = variant.partition("=")
        builders[f"litquant {name}"] = lambda root, options=options: litquant_recipe(args, root, options)
    warm_up()
    order = [*args.recipes.split(","), *(name for name in builders if name.startswith("litquant "))]
    runs: dict[str, dict] = {}
    for name in order:  # the results files are rewritten after each recipe: a stopped run keeps what it measured
        runs[name] = run_recipe(name, builders[name], dm, args)
        write_results(args, runs, {"test_samples": len(dm.split("test")),
                                   "train_samples": len(dm.split("train")), "load_average_before": load_before,
                                   "recipes_planned": order})


def write_results(args: argparse.Namespace, runs: dict[str, dict], settings: dict) -> None:
    """``results/<name>.json`` and ``.md`` from the recipes run so far."""
    speedup = {}
    if "tutorial" in runs:
        tutorial = runs["tutorial"]
        for name, run in runs.items():
            if name.startswith("litquant") and run["reached"]:
                # Not reached by the tutorial's recipe: its whole fit is a lower bound of its time to the target.
                tutorial_s = tutorial["seconds_to_target"] or tutorial["fit_s"]
                tutorial_cpu_s = tutorial["cpu_seconds_to_target"] or tutorial["fit_cpu_s"]
                speedup[name] = {"ratio": tutorial_s / run["seconds_to_target"],
                                 "cpu_ratio": tutorial_cpu_s / run["cpu_seconds_to_target"],
                                 "lower_bound": not tutorial["reached"]}
    info = cpu_info()
    result = {"settings": {"target_test_acc": args.target, **settings, "eval_every_epochs": args.eval_every,
                           "time_cap_s": args.time_cap_s, "seed": args.seed, "threads": torch.get_num_threads(),
                           "cpu_kind": info.isa, "load_average_after": _load_average()},
              "runs": runs, "speedup": speedup, "target_speedup": TARGET_SPEEDUP,
              "target_met": any(s["ratio"] >= TARGET_SPEEDUP for s in speedup.values())}
    save_results(args.name, result)
    write_markdown(args.name, f"Time to {args.target:.1%} test accuracy ({info.isa})", _markdown(result),
                   environment())


def _markdown(result: dict) -> str:
    settings = result["settings"]
    rows = []
    for name, run in result["runs"].items():
        r = run["recipe"]
        what = (f"{r['optimizer']} lr {r['lr']:g}, {r['schedule']} schedule, batch {r['batch_size']}, "
                f"shift {r['augment_shift']}, {r['precision']}{', channels_last' if r['channels_last'] else ''}, "
                f"max {r['max_epochs']} epochs{' ' + r['extra_args'] if r.get('extra_args') else ''}")
        reached = (f"{run['seconds_to_target']:.1f}" if run["reached"] else
                   f"not reached in {run['fit_s']:.0f} s" + (" (time cap)" if run["stopped_by_time_cap"] else ""))
        rows.append((name, what, reached, run["cpu_seconds_to_target"] or "-", run["epochs_to_target"] or "-",
                     run["samples_to_target"] or "-", f"{run['best_test_acc']:.4f}"))
    body = (f"Wall time until the test accuracy on {settings['test_samples']:,} test images reaches "
            f"{settings['target_test_acc']:.1%}, training on {settings['train_samples']:,} images "
            f"({settings['threads']} torch threads); test accuracy "
            f"measured every {settings['eval_every_epochs']} epoch (clock stopped meanwhile); seed {settings['seed']}; "
            f"load average before {settings['load_average_before']}, after {settings['load_average_after']}.\n\n")
    body += markdown_table(("recipe", "what", "seconds to target", "CPU seconds", "epochs", "samples",
                            "best test_acc"), rows)
    missing = [name for name in settings["recipes_planned"] if name not in result["runs"]]
    body += f"\nNot run (the benchmark was stopped before): {', '.join(missing)}.\n" if missing else "\n"
    for name in result["runs"]:
        if not name.startswith("litquant"):
            continue
        if name in result["speedup"]:
            speedup = result["speedup"][name]
            verdict = "met" if speedup["ratio"] >= result["target_speedup"] else "missed"
            bound = " (at least: the tutorial's recipe did not reach the target)" if speedup["lower_bound"] else ""
            body += (f"- `{name}` reaches the target **{speedup['ratio']:.2f}x** faster than the tutorial's recipe"
                     f"{bound} (target >= {result['target_speedup']}: **{verdict}**); in CPU seconds, which the "
                     f"other jobs on shared cores disturb less, {speedup['cpu_ratio']:.2f}x.\n")
        else:
            body += f"- `{name}` did not reach the target: no speed-up to report.\n"
    return body


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
