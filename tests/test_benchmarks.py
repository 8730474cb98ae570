"""The benchmark scripts, run as ``make bench`` runs them (fresh processes) on tiny settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import command_env, run_python, tiny

from litquant.cli.lightning import DEFAULT_MAX_EPOCHS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY_DATA = tiny("--", val_size=128, test_size=128)


def run_benchmark(script: str, *args: str, out: Path) -> dict:
    """Run ``benchmarks/<script>`` writing its results to ``out``; return the JSON it wrote."""
    name = out / Path(script).stem
    run_python(str(BENCHMARKS / script), *args, f"--name={name}", cwd=BENCHMARKS, env=command_env(), timeout=300)
    assert Path(f"{name}.md").read_text().startswith("# ")
    return json.loads(Path(f"{name}.json").read_text())


def check_environment(results: dict, script: str) -> None:
    env = results["environment"]
    assert env["cpu"]["model"] and isinstance(env["cpu"]["flags"], list)
    assert env["torch_threads"] >= 1 and env["versions"]["torch"] and env["versions"]["lightning"]
    assert script in env["command"] and env["date"].startswith("20")
    assert not re.search(r"(^|[\s=])/", env["command"]), env["command"]  # no path of this machine is recorded


def test_lightning_overhead_matches_losses(mnist_dir: Path, tmp_path: Path) -> None:
    results = run_benchmark("lightning_overhead.py", f"--data_dir={mnist_dir}", *TINY_DATA, "--rounds=1",
                            out=tmp_path)
    check_environment(results, "lightning_overhead.py")
    summary = results["summary"]
    assert set(summary) == {"pytorch", "lightning", "litquant", "litquant+files"}
    # Same seed, same batches, same recipe, fp32 everywhere (the benchmark pins the Trainers' precision on every
    # CPU): the hand-written loop and every Trainer do the same arithmetic and see the same losses.
    assert results["checks"]["first_loss_spread"] < 1e-5
    assert results["checks"]["final_train_loss_spread"] < 1e-3
    assert results["checks"]["train_acc_spread"] < 1e-6 and results["checks"]["val_acc_spread"] < 1e-6
    assert all(s["median_s"] > 0 for s in summary.values())
    assert summary["pytorch"]["ratio"] == 1.0


def test_training_throughput_reports_speed_accuracy_and_flops(mnist_dir: Path, tmp_path: Path) -> None:
    results = run_benchmark("training_throughput.py", f"--data_dir={mnist_dir}", *TINY_DATA, "--rounds=1",
                            "--factor_samples=128", "--factors=per-sample,no data pipeline", out=tmp_path)
    check_environment(results, "training_throughput.py")
    assert set(results["summary"]) == {"tutorial-style", "litquant"}
    for entry in results["summary"].values():
        assert entry["samples"] == 256 and entry["samples_per_s"] > 0 and 0 <= entry["val_acc"] <= 1
    assert len(results["factors"]) == 2
    # The classic MNIST CNN: ~12 M multiply-adds forward; the training step about three times that.
    flops = results["flops_per_sample"]
    assert 23e6 < flops["forward"] < 25e6 and 2.5 < flops["training"] / flops["forward"] < 3.1
    assert results["cpu_peak"]["peak_gflops"] > 0
    shares = results["step_breakdown"]
    assert abs(sum(shares.values()) - 1) < 1e-6 and shares["convolution backward"] > 0


def test_inference_table_covers_every_model(mnist_dir: Path, tmp_path: Path) -> None:
    results = run_benchmark("inference.py", f"--data_dir={mnist_dir}", *TINY_DATA, "--train_epochs=1",
                            "--methods=ptq,onnxruntime", "--batch_sizes=1,4", "--threads=1", "--rounds=1",
                            "--repeats=2", "--quant.calibration_batches=1", out=tmp_path)
    check_environment(results, "inference.py")
    models = results["models"]
    assert set(models) == {"fp32 eager", "fp32 compiled", "ptq int8", "onnxruntime fp32", "onnxruntime int8"}
    for entry in models.values():
        assert entry["t1_b1"]["median_ms"] > 0 and entry["t1_b4"]["samples_per_s"] > 0
        assert entry["size_bytes"] > 0 and 0 <= entry["test_acc"] <= 1
    assert models["onnxruntime int8"]["size_bytes"] < models["onnxruntime fp32"]["size_bytes"] / 2
    assert "t1" in results["checks"]
    assert "/" not in results["settings"]["checkpoint_info"]["path"]  # the file name, not where it lay
    kernels = results["int8_kernel_time"]  # the int8 kernels' own time inside one PyTorch int8 call
    assert kernels["model"] == "ptq int8" and 0 < kernels["kernels_ms"] < kernels["call_ms_profiled"]


def test_aot_overhead_compares_the_runner_with_the_raw_package(mnist_dir: Path, tmp_path: Path) -> None:
    results = run_benchmark("aot_overhead.py", f"--data_dir={mnist_dir}", *TINY_DATA, "--rounds=1", "--calls=5",
                            "--no_max_autotune", out=tmp_path)
    check_environment(results, "aot_overhead.py")
    assert {(r["model"], r["threads"]) for r in results["rows"]} == {
        (name, threads) for name in ("package", "litquant runner", "load_artifact") for threads in (1, 2)}
    # batch 1 runs on one thread whatever the process's setting, so it is compared with the package on one thread
    assert [(o["threads"], o["ran_on_threads"]) for o in results["overheads"]] == [(1, 1), (2, 1)]
    package_1 = next(r["p50_ms"] for r in results["rows"] if (r["model"], r["threads"]) == ("package", 1))
    assert all(o["package_ms"] == package_1 for o in results["overheads"])
    checks = results["checks"]
    assert checks["met"] is (checks["max_overhead_batch_1_ms"] <= checks["target_overhead_ms"] == 0.02)
    assert checks["package_batch_1_two_over_one_thread"] > 0


def test_run_quick_knows_every_benchmark() -> None:
    result = run_python(str(BENCHMARKS / "run_quick.py"), "--help", cwd=BENCHMARKS, timeout=120)
    assert result.returncode == 0 and "lightning_overhead,training_throughput,inference" in result.stdout


def test_time_to_accuracy_stops_each_recipe_at_the_target(mnist_dir: Path, tmp_path: Path) -> None:
    results = run_benchmark("time_to_accuracy.py", f"--data_dir={mnist_dir}", "--train_size=1024", "--val_size=128",
                            "--test_size=128", "--target=0.4", "--max_epochs=2",
                            "--eval_every=0.5",
                            "--variant=never=--trainer.max_epochs=1 --model.lr=0", out=tmp_path)
    check_environment(results, "time_to_accuracy.py")
    assert results["settings"]["cpu_kind"] in {"avx2", "avx512", "avx512-vnni", "amx", "other"}
    assert results["settings"]["test_samples"] == 128 and results["settings"]["train_samples"] == 1024
    runs = results["runs"]
    assert list(runs) == ["litquant", "tutorial", "litquant never"]
    assert runs["tutorial"]["recipe"]["batch_size"] == 64 and runs["tutorial"]["recipe"]["optimizer"] == "adam"
    assert runs["litquant"]["recipe"]["batch_size"] == 128 and runs["litquant"]["recipe"]["precision"]
    assert runs["litquant"]["recipe"]["max_epochs"] == DEFAULT_MAX_EPOCHS  # `litquant fit`'s own length
    for name in ("litquant", "tutorial"):
        run = runs[name]
        evaluations = run["evaluations"]
        assert run["reached"] and run["seconds_to_target"] > 0 and run["samples_to_target"] <= 2048
        # Stopped at the first evaluation at or above the target; none after it.
        assert evaluations[-1]["test_acc"] >= 0.4 and all(e["test_acc"] < 0.4 for e in evaluations[:-1])
        assert [e["samples"] for e in evaluations] == sorted(e["samples"] for e in evaluations)
    # A learning rate of 0 never learns: "not reached", no speed-up claimed for it.
    never = runs["litquant never"]
    assert not never["reached"] and never["seconds_to_target"] is None and never["best_test_acc"] < 0.4
    assert set(results["speedup"]) == {"litquant"} and results["speedup"]["litquant"]["ratio"] > 0
    assert "did not reach the target" in (tmp_path / "time_to_accuracy.md").read_text()


def test_recipe_search_reports_epochs_to_the_target_per_recipe(mnist_dir: Path, tmp_path: Path) -> None:
    recipes = [{"lr": 3e-3, "batch": 64, "epochs": 2, "shift": 1, "ema": 0.9},
               {"lr": 0.0, "batch": 64, "epochs": 1, "optimizer": "adam", "schedule": "none", "dropout": [0, 0]}]
    results = run_benchmark("recipe_search.py", f"--data_dir={mnist_dir}", "--train_size=1024", "--val_size=128",
                            "--test_size=128", "--target=0.4", f"--recipes={json.dumps(recipes)}", out=tmp_path)
    check_environment(results, "recipe_search.py")
    learns, never = results["runs"]
    assert [r["recipe"] for r in results["runs"]] == recipes
    # Test accuracy every quarter epoch: 16 batches of 64 an epoch, so at steps 4, 8, 12, 16 of each epoch.
    assert [p["epochs"] for p in learns["curve"]] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    first = next(p["epochs"] for p in learns["curve"] if p["test_acc"] >= 0.4)
    assert learns["epochs_to_target"] == first and learns["best_test_acc"] >= 0.4
    # A learning rate of 0 never learns: "not reached".
    assert never["epochs_to_target"] is None and never["best_test_acc"] < 0.4
    assert "not reached" in (tmp_path / "recipe_search.md").read_text()
