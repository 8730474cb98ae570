"""Load benchmark of ``litquant serve`` on 127.0.0.1, as ratios to a minimal in-process server measured in the
same run, and where the time of one request goes.

The baseline (``serve_baseline.py``: FastAPI on uvicorn, one process, the same multipart ``file`` field and
image framing, ONNX Runtime called in the handler) and each ``litquant serve`` configuration serve the same
int8 ONNX model as real processes. Clients are threads with keep-alive connections posting a real MNIST test
digit as a PNG to ``/predict``. At each concurrency, the baseline and the configuration are loaded in
alternating rounds, so that a busy machine slows both alike; the tables give medians over the rounds and
litquant's ratios to the baseline. Then each step of one request is timed alone (``serve_profile.py``).

Targets (2 cores, 32 clients, int8): requests/s at least 1.0x the baseline's, p99 at most 50 ms; at
concurrency 1, p50 at most 1.5 ms; batching on never slower than off at concurrency 1.

    python benchmarks/serve.py --ckpt_path runs/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from environment import environment, result_name, save_results
from harness import add_data_arguments, alternate, datamodule, markdown_table, median, write_markdown
from PIL import Image
from serve_profile import BOUNDARY, multipart_body, stage_costs

HERE = Path(__file__).resolve().parent
NAME = result_name("serve")  # results/serve.<cpu kind>.json and .md


def configurations(max_batch_size: int) -> dict[str, list[str]]:
    """``litquant serve`` options of each measured configuration, by the name the tables give it."""
    batch = ["--max_batch_size", str(max_batch_size)]
    return {
        "in process, batching off": ["--max_batch_size", "1"],
        "in process, batching on": batch,
        "LitServe, 1 worker": ["--workers", "1", *batch],
        "LitServe, 2 workers": ["--workers", "2", *batch],
        "LitServe, 1 worker, batch_timeout 5 ms (the former default)": ["--workers", "1", *batch,
                                                                        "--batch_timeout", "0.005"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log: Path, ready: str) -> subprocess.Popen:
    """``command`` as a process of its own; returns once ``ready`` appears in its output (``log``)."""
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    while ready not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{command[1]} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by every process of the process group ``group``: a server and its
    worker processes. Unlike latency, hardly changed by other programs sharing the CPU."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def load(port: int, body: bytes, concurrency: int, requests: int, max_seconds: float,
         path: str = "/predict", group: int | None = None) -> dict:
    """``requests`` posts (at most ``max_seconds``) from ``concurrency`` keep-alive clients; with ``group``, also
    the CPU milliseconds the server's processes spent per request.

    Each client opens its connection and sends one untimed request first; the clock starts once every client
    has: the figures are the steady state of ``concurrency`` open connections, not the burst of connecting
    (``concurrency`` first requests at once, which would be most of the slowest 1 % of a short round).
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    remaining = [requests]
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    clock: dict[str, float] = {}

    def start_clock() -> None:
        clock["cpu"] = cpu_seconds(group) if group else 0.0
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + max_seconds

    ready = threading.Barrier(concurrency, action=start_clock)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", path, body=body, headers=headers)
        connection.getresponse().read()
        ready.wait()
        while time.perf_counter() < clock["deadline"]:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            begin = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - begin
            with lock:
                latencies.append(elapsed)
                errors[0] += response.status != 200
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - clock["start"]
    cpu_ms = (cpu_seconds(group) - clock["cpu"]) * 1000.0 / max(1, len(latencies)) if group else float("nan")
    ms = np.array(latencies) * 1000.0
    return {"requests": len(latencies), "errors": errors[0], "requests_per_s": len(latencies) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "cpu_ms": cpu_ms}


def summary(rounds: list[dict]) -> dict:
    """Medians over rounds; requests and errors summed."""
    return {"requests": sum(r["requests"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
            **{key: median(r[key] for r in rounds) for key in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms")}}


def digit_png(args: argparse.Namespace) -> bytes:
    digit = datamodule(args).split("test").__getitems__([0])[0][0, 0].numpy()
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return buffer.getvalue()


def measure(configs: dict[str, list[str]], model: Path, body: bytes, args: argparse.Namespace,
            work: Path) -> tuple[list[dict], dict]:
    """Every configuration against the baseline, alternately, at every concurrency; and the HTTP round trip
    alone (the baseline's ``/echo`` at concurrency 1)."""
    base_port = free_port()
    baseline = start_baseline(model, base_port, work / "baseline.log")
    runs = []
    try:
        load(base_port, body, 8, 50, 10.0)  # warm-up
        echo = summary([load(base_port, body, 1, args.requests // 2, args.max_seconds, "/echo", baseline.pid)
                        for _ in range(args.rounds)])
        for label, options in configs.items():
            port = free_port()
            print(f"litquant serve, {label}...", flush=True)
            server = start([sys.executable, "-m", "litquant.cli", "serve", str(model), "--port", str(port),
                            *options], work / "server.log", "ready at")
            try:
                load(port, body, 8, 50, 10.0)  # warm-up
                for concurrency in args.concurrency:
                    requests = args.requests if concurrency > 1 else args.requests // 2
                    results = alternate({
                        "baseline": lambda c=concurrency, n=requests: load(base_port, body, c, n, args.max_seconds,
                                                                           group=baseline.pid),
                        "litquant": lambda c=concurrency, n=requests, p=port, g=server.pid: load(
                            p, body, c, n, args.max_seconds, group=g),
                    }, args.rounds)
                    mine, theirs = summary(results["litquant"]), summary(results["baseline"])
                    run = {"configuration": label, "options": " ".join(options), "concurrency": concurrency,
                           **mine, "baseline": theirs,
                           "throughput_ratio": mine["requests_per_s"] / theirs["requests_per_s"],
                           "p50_ratio": mine["p50_ms"] / theirs["p50_ms"],
                           "p99_ratio": mine["p99_ms"] / theirs["p99_ms"],
                           "cpu_ratio": mine["cpu_ms"] / theirs["cpu_ms"]}
                    print(f"  concurrency {concurrency}: {mine['requests_per_s']:.0f} req/s "
                          f"({run['throughput_ratio']:.2f}x the baseline's {theirs['requests_per_s']:.0f}), "
                          f"p50 {mine['p50_ms']:.2f} ms, p99 {mine['p99_ms']:.1f} ms, {mine['cpu_ms']:.2f} CPU ms "
                          f"per request (baseline {theirs['p50_ms']:.2f} / {theirs['p99_ms']:.1f} / "
                          f"{theirs['cpu_ms']:.2f})", flush=True)
                    runs.append(run)
            finally:
                stop(server)
    finally:
        stop(baseline)
    return runs, echo


def start_baseline(model: Path, port: int, log: Path) -> subprocess.Popen:
    """The baseline server; ready once its port answers."""
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(HERE / "serve_baseline.py"), str(model), str(port)],
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError(f"the baseline server did not start:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.2)


def find(runs: list[dict], label: str, concurrency: int) -> dict | None:
    return next((r for r in runs if r["configuration"] == label and r["concurrency"] == concurrency), None)


def verdicts(runs: list[dict], top: int) -> tuple[dict, list[str]]:
    """The issue's targets for the default configuration (in process, batching on), checked on ``runs``."""
    on = find(runs, "in process, batching on", top)
    one_on, one_off = find(runs, "in process, batching on", 1), find(runs, "in process, batching off", 1)
    targets: dict = {}
    lines = []
    if on:
        targets |= {"throughput_ratio": on["throughput_ratio"], "throughput_met": on["throughput_ratio"] >= 1.0,
                    "p99_ms": on["p99_ms"], "p99_met": on["p99_ms"] <= 50.0}
        targets |= {"cpu_ratio": on["cpu_ratio"]}
        lines.append(f"concurrency {top}: {on['throughput_ratio']:.2f}x the baseline's requests/s (target >= 1.0x: "
                     f"{'met' if targets['throughput_met'] else 'missed'}), p99 {on['p99_ms']:.1f} ms (target "
                     f"<= 50 ms: {'met' if targets['p99_met'] else 'missed'}; the baseline's "
                     f"{on['baseline']['p99_ms']:.1f} ms in the same rounds), {on['cpu_ratio']:.2f}x the baseline's "
                     "CPU time per request")
    if one_on:
        targets |= {"p50_ms_at_1": one_on["p50_ms"], "p50_met": one_on["p50_ms"] <= 1.5}
        lines.append(f"concurrency 1: p50 {one_on['p50_ms']:.2f} ms (target <= 1.5 ms: "
                     f"{'met' if targets['p50_met'] else 'missed'}; the baseline's "
                     f"{one_on['baseline']['p50_ms']:.2f} ms in the same rounds), {one_on['cpu_ratio']:.2f}x the "
                     "baseline's CPU time per request")
    if one_on and one_off:
        ratio = one_on["p50_ratio"] / one_off["p50_ratio"]
        targets |= {"batching_on_vs_off_p50_at_1": ratio}
        lines.append(f"concurrency 1, batching on vs off: p50 {ratio:.2f}x, each as a ratio to the baseline of its "
                     "own rounds (the two are measured minutes apart; a lone request takes the same path in both)")
    return targets, lines


def profile_table(costs: dict[str, float], echo: dict, runs: list[dict]) -> str:
    """The steps of one request (µs), the HTTP round trip, and the measured p50s and server CPU per request at
    concurrency 1, which say what the steps leave to the rest."""
    rows = [["HTTP round trip: client, socket, uvicorn (baseline /echo, concurrency 1, p50)",
             echo["p50_ms"] * 1000.0, echo["cpu_ms"] * 1000.0]]
    rows += [[name, us, ""] for name, us in costs.items()]
    rows.append(["sum of the steps", sum(row[1] for row in rows), ""])
    measured = [(f"litquant serve, {r['configuration']}", r) for r in runs if r["concurrency"] == 1]
    if measured:
        measured.append(("the baseline (same rounds as the first row above)", {**measured[0][1]["baseline"]}))
    rows += [[f"measured at concurrency 1: {label}", run["p50_ms"] * 1000.0, run["cpu_ms"] * 1000.0]
             for label, run in measured]
    return markdown_table(["step of one /predict request", "µs (median; p50 when measured)",
                           "server CPU µs per request"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="the fp32 checkpoint (quantized to an int8 ONNX model)")
    parser.add_argument("--requests", type=int, default=800, help="requests per round (half at concurrency 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per concurrency")
    parser.add_argument("--max_seconds", type=float, default=5.0, help="time limit of one round")
    parser.add_argument("--concurrency", type=lambda text: [int(c) for c in text.split(",")], default=[1, 32],
                        help="client counts, comma-separated (default: 1,32)")
    parser.add_argument("--max_batch_size", type=int, default=32, help="dynamic batch limit of the batching runs")
    parser.add_argument("--only", default="", help="measure only the configurations whose name contains this")
    parser.add_argument("--note", default="", help="a note for the results (e.g. a busy machine)")
    add_data_arguments(parser, train_size=2000, val_size=512)
    args = parser.parse_args()

    from litquant.quantization import QuantizeConfig, quantize

    body = multipart_body(digit_png(args))
    configs = {k: v for k, v in configurations(args.max_batch_size).items() if args.only in k}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = quantize("onnxruntime", args.ckpt_path, datamodule(args), work,
                         config=QuantizeConfig(calibration_batches=8, accuracy_batches=0))
        load_average = [os.getloadavg()[0]]
        runs, echo = measure(configs, model, body, args, work)
        load_average.append(os.getloadavg()[0])
        print("timing each step of one request...", flush=True)
        costs = stage_costs(str(model), digit_png(args))

    top = max(args.concurrency)
    targets, lines = verdicts(runs, top)
    for line in lines:
        print(line)
    settings = {key: getattr(args, key) for key in ("requests", "rounds", "max_seconds", "concurrency",
                                                    "max_batch_size", "note")}
    settings["load_average_before_after"] = load_average
    save_results(NAME, {"settings": settings, "runs": runs, "http_round_trip": echo,
                        "profile_us": costs, "targets": targets})
    table = markdown_table(
        ["litquant serve", "clients", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "baseline req/s", "baseline p50",
         "baseline p99", "baseline CPU ms/req", "req/s ratio", "p99 ratio", "CPU ratio", "errors"],
        [[r["configuration"], r["concurrency"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["cpu_ms"],
          r["baseline"]["requests_per_s"], r["baseline"]["p50_ms"], r["baseline"]["p99_ms"], r["baseline"]["cpu_ms"],
          r["throughput_ratio"], r["p99_ratio"], r["cpu_ratio"], r["errors"] + r["baseline"]["errors"]]
         for r in runs])
    note = f"\n\nNote: {args.note}" if args.note else ""
    body_text = (f"Load average (1 min) of the machine before and after the runs: {load_average[0]:.1f}, "
                 f"{load_average[1]:.1f} ({os.cpu_count()} cores).\n\n"
                 f"Medians of {args.rounds} alternating rounds per row; the baseline columns are the minimal "
                 "in-process server measured in the same rounds; ratios are litquant / baseline. CPU ms/req is "
                 "the CPU time (user + system) of the server's processes per request: on a CPU shared with "
                 "other programs, latency and requests/s depend on how the scheduler shares the cores; the CPU "
                 "a request costs hardly does.\n\n"
                 f"{table}\n" + "".join(f"- {line}\n" for line in lines)
                 + "\n## Where the time of one request goes\n\n"
                 "Each step timed alone in one process (`benchmarks/serve_profile.py`, medians of 300), the HTTP "
                 "round trip and the end-to-end p50s from the runs above:\n\n"
                 + profile_table(costs, echo, runs) + note + "\n")
    write_markdown(NAME, "Serving load: litquant serve against a minimal in-process server", body_text,
                   environment())


if __name__ == "__main__":
    main()
