"""Load benchmark of ``litquant serve`` on 127.0.0.1: requests/s and p50/p99 latency at concurrency 1, 8 and 32,
for the fp32 and the int8 (``ptq``) artifact, with and without dynamic batching, in one run.

Each of the four servers is a real ``litquant serve`` process; clients are threads with keep-alive
connections posting a real MNIST test digit as a PNG to ``/predict``. Every level is bounded in requests
and in seconds. Target (2 cores): int8 with batching at least 3x the requests/s of fp32 without batching at
concurrency 32, with p99 at most 50 ms there.

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
from harness import add_data_arguments, datamodule, markdown_table, write_markdown
from PIL import Image

CONCURRENCY = (1, 8, 32)
BOUNDARY = "litquant-bench"

NAME = result_name("serve")  # results/serve.<cpu kind>.json and .md


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, batching: bool, max_batch_size: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-m", "litquant.cli", "serve", str(model), "--port", str(port),
               "--max_batch_size", str(max_batch_size if batching else 1), "--batch_timeout", "0.005"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    while "ready at" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return process, port


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load(port: int, body: bytes, concurrency: int, requests: int, max_seconds: float) -> dict:
    """``requests`` posts (at most ``max_seconds``) from ``concurrency`` keep-alive clients."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.perf_counter() + max_seconds
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            begin = time.perf_counter()
            connection.request("POST", "/predict", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - begin
            with lock:
                latencies.append(elapsed)
                errors[0] += response.status != 200
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000.0
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors[0], "seconds": wall,
            "requests_per_s": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="the fp32 checkpoint (exported to fp32.pt2 and ptq.pt2)")
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--max_seconds", type=float, default=20.0, help="time limit per concurrency level")
    parser.add_argument("--max_batch_size", type=int, default=32, help="dynamic batch limit of the batching runs")
    parser.add_argument("--note", default="", help="a note for the results (e.g. a busy machine)")
    add_data_arguments(parser, train_size=2000, val_size=512)
    args = parser.parse_args()

    from litquant.quantization import QuantizeConfig, export_fp32, quantize

    dm = datamodule(args)
    digit = dm.split("test").__getitems__([0])[0][0, 0].numpy()
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + buffer.getvalue() + f"\r\n--{BOUNDARY}--\r\n".encode()
    runs = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        models = {"fp32": export_fp32(args.ckpt_path, work, datamodule=dm, onnx=False),
                  "int8": quantize("ptq", args.ckpt_path, dm, work,
                                   config=QuantizeConfig(calibration_batches=8, accuracy_batches=0))}
        for precision, model in models.items():
            for batching in (False, True):
                print(f"serving {precision}, batching {'on' if batching else 'off'}...", flush=True)
                process, port = start_server(model, batching, args.max_batch_size, work / "server.log")
                try:
                    load(port, body, 8, 16, 10.0)  # warm-up
                    for concurrency in CONCURRENCY:
                        result = {"model": precision, "batching": batching,
                                  **load(port, body, concurrency, args.requests, args.max_seconds)}
                        print(f"  concurrency {concurrency}: {result['requests_per_s']:.1f} req/s, "
                              f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms", flush=True)
                        runs.append(result)
                finally:
                    stop(process)

    def find(model: str, batching: bool) -> dict:
        return next(r for r in runs if r["model"] == model and r["batching"] == batching and r["concurrency"] == 32)

    base, best = find("fp32", False), find("int8", True)
    speedup = best["requests_per_s"] / base["requests_per_s"]
    targets = {"speedup_at_32": speedup, "speedup_met": speedup >= 3.0, "p99_ms_at_32": best["p99_ms"],
               "p99_met": best["p99_ms"] <= 50.0}
    verdict = (f"int8 with batching vs fp32 without, concurrency 32: {speedup:.2f}x requests/s (target >= 3x: "
               f"{'met' if targets['speedup_met'] else 'missed'}); p99 {best['p99_ms']:.1f} ms (target <= 50 ms: "
               f"{'met' if targets['p99_met'] else 'missed'})")
    print(verdict)
    env = environment()
    settings = {"requests": args.requests, "max_seconds": args.max_seconds, "max_batch_size": args.max_batch_size,
                "batch_timeout": 0.005, "note": args.note}
    save_results(NAME, {"settings": settings, "runs": runs, "targets": targets})
    table = markdown_table(["model", "batching", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "errors"],
                           [[r["model"], "on" if r["batching"] else "off", r["concurrency"], r["requests"],
                             r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]] for r in runs])
    note = f"\n\nNote: {args.note}" if args.note else ""
    write_markdown(NAME, "Serving load: litquant serve on 127.0.0.1", f"{table}\n{verdict}.{note}\n", env)


if __name__ == "__main__":
    main()
