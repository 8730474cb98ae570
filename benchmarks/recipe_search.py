"""Recipe search: test accuracy every quarter epoch for training recipes of the classic MNIST CNN, to see which
recipe reaches 99.0% test accuracy in the fewest samples (the work behind ``time_to_accuracy.py``'s default).

Each recipe trains in its own process with one torch thread (``--parallel`` at a time), in a plain loop that
follows ``litquant fit``'s recipe: AdamW (weight decay 1e-4), a one-cycle schedule stepped every batch with 15 %
warm-up over the whole fit, random shifts of up to ``shift`` pixels, the 55,000/5,000 split. Options a recipe
may set (JSON): ``lr``, ``batch``, ``epochs``, ``shift``, ``optimizer`` (adamw, adam), ``schedule`` (onecycle,
none), ``dropout`` (the two dropout rates), ``label_smoothing``, ``ema`` (decay of an exponential moving
average of the weights, which is then what is tested), ``seed``. Accuracy does not depend on the machine's
load, so this runs beside other work; its seconds do::

    python benchmarks/recipe_search.py --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from environment import environment, result_name, save_results
from harness import add_data_arguments, datamodule, markdown_table, write_markdown

from litquant.cpu import cpu_info
from litquant.data.module import random_shift
from litquant.evaluation import evaluate
from litquant.fresh_process import json_lines
from litquant.model import Net

NAME = "recipe_search"
DEFAULT_RECIPES = [
    {"lr": 3e-3, "batch": 128, "epochs": 2, "shift": 2},
    {"lr": 3e-3, "batch": 128, "epochs": 3, "shift": 2},
    {"lr": 3e-3, "batch": 128, "epochs": 2, "shift": 0},
    {"lr": 3e-3, "batch": 128, "epochs": 1, "shift": 0},
    {"lr": 1e-2, "batch": 128, "epochs": 1, "shift": 0},
    {"lr": 3e-3, "batch": 64, "epochs": 1, "shift": 0},
    {"lr": 5e-3, "batch": 256, "epochs": 2, "shift": 0},
    {"lr": 3e-3, "batch": 128, "epochs": 1, "shift": 0, "dropout": [0.0, 0.0]},
]


def train(recipe: dict, args: argparse.Namespace) -> dict:
    """One recipe; test accuracy every quarter epoch (and at the end)."""
    torch.set_num_threads(1)
    seed = recipe.get("seed", args.seed)
    batch, epochs, shift = recipe["batch"], recipe["epochs"], recipe.get("shift", 0)
    dm = datamodule(args, batch_size=batch)
    torch.manual_seed(seed)
    dropout = recipe.get("dropout", [0.25, 0.5])
    net = Net(dropout1=dropout[0], dropout2=dropout[1])
    if recipe.get("optimizer", "adamw") == "adam":
        optimizer = torch.optim.Adam(net.parameters(), recipe["lr"])
    else:
        optimizer = torch.optim.AdamW(net.parameters(), recipe["lr"], weight_decay=1e-4)
    train_split = dm.split("train")
    steps_per_epoch = -(-len(train_split) // batch)
    schedule = None
    if recipe.get("schedule", "onecycle") == "onecycle":
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["lr"],
                                                       total_steps=steps_per_epoch * epochs, pct_start=0.15)
    average = None
    if recipe.get("ema"):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        average = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(recipe["ema"]))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.get("label_smoothing", 0.0))

    def test_accuracy() -> float:
        accuracy = evaluate(average.module if average is not None else net, dm, "test", batch_size=1000)
        net.train()  # evaluate() left it in eval mode
        return accuracy

    curve, step, train_seconds = [], 0, 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, len(train_split), batch):
            started = time.perf_counter()
            images, labels = train_split.__getitems__(order[start:start + batch].tolist())
            if shift:
                images = random_shift(images, shift)
            loss = loss_fn(net(dm.normalize(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if average is not None:
                average.update_parameters(net)
            train_seconds += time.perf_counter() - started
            step += 1
            if step % max(1, steps_per_epoch // 4) == 0 or step == steps_per_epoch * (epoch + 1):
                point = {"epochs": round(step / steps_per_epoch, 2), "test_acc": test_accuracy()}
                if not curve or curve[-1]["epochs"] != point["epochs"]:
                    curve.append(point)
    reached = next((p for p in curve if p["test_acc"] >= args.target), None)
    return {"recipe": recipe, "curve": curve, "epochs_to_target": reached["epochs"] if reached else None,
            "final_test_acc": curve[-1]["test_acc"], "best_test_acc": max(p["test_acc"] for p in curve),
            "train_seconds_1_thread": round(train_seconds, 1)}


def describe(recipe: dict) -> str:
    parts = [f"{recipe.get('optimizer', 'adamw')} lr {recipe['lr']:g}", f"{recipe.get('schedule', 'onecycle')}",
             f"batch {recipe['batch']}", f"{recipe['epochs']} epoch(s)", f"shift {recipe.get('shift', 0)}"]
    if "dropout" in recipe:
        parts.append(f"dropout {recipe['dropout'][0]:g}/{recipe['dropout'][1]:g}")
    if recipe.get("label_smoothing"):
        parts.append(f"label smoothing {recipe['label_smoothing']:g}")
    if recipe.get("ema"):
        parts.append(f"EMA {recipe['ema']:g}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, train_size=0, test_size=0)
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--recipes", default=json.dumps(DEFAULT_RECIPES), help="JSON list of recipes (see above)")
    parser.add_argument("--parallel", type=int, default=2, help="recipes trained at once (one thread each)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: train this recipe, print JSON
    parser.add_argument("--name", default=result_name(NAME), help="results file name")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train(json.loads(args.one), args)))
        return

    def child(recipe: dict) -> dict:
        command = [sys.executable, __file__, "--one", json.dumps(recipe), "--target", str(args.target),
                   "--train_size", str(args.train_size), "--val_size", str(args.val_size),
                   "--test_size", str(args.test_size), "--seed", str(args.seed)]
        if args.data_dir:
            command += ["--data_dir", args.data_dir]
        results, code, tail = json_lines(command)
        if code or not results:
            raise RuntimeError(f"{describe(recipe)}: exit {code}: {tail}")
        result = results[-1]
        print(f"{describe(recipe)}: " + " ".join(f"{p['epochs']}:{p['test_acc']:.4f}" for p in result["curve"]),
              flush=True)
        return result

    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(child, json.loads(args.recipes)))
    result = {"settings": {"target_test_acc": args.target, "seed": args.seed, "cpu_kind": cpu_info().isa,
                           "train_size": args.train_size or 55000}, "runs": runs}
    save_results(args.name, result)
    rows = [(describe(r["recipe"]), r["epochs_to_target"] or "not reached", f"{r['final_test_acc']:.4f}",
             f"{r['best_test_acc']:.4f}", " ".join(f"{p['test_acc']:.4f}" for p in r["curve"]),
             r["train_seconds_1_thread"]) for r in runs]
    body = (f"Test accuracy ({args.test_size or 10000:,} images) every quarter epoch, training on "
            f"{args.train_size or 55000:,} images, seed "
            f"{args.seed}; one torch thread per recipe, {args.parallel} recipes at once.\n\n"
            + markdown_table(("recipe", f"epochs to {args.target:.1%}", "final test_acc", "best test_acc",
                              "test_acc every quarter epoch", "training s (1 thread)"), rows))
    write_markdown(args.name, f"Recipe search: epochs to {args.target:.1%} test accuracy", body, environment())


if __name__ == "__main__":
    main()
