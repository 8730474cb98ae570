"""``litquant serve MODEL...``: the command's options and the server's start-up and shut-down
(:mod:`litquant.serve` serves)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence

from jsonargparse import ArgumentParser, Namespace

from litquant.cli.options import add_runner_argument, command_parser
from litquant.errors import UserError

HOSTS = ("127.0.0.1", "0.0.0.0", "::")

DESCRIPTION = """Serve checkpoints and int8 artifacts over HTTP (dynamic batching), with a page to draw digits
on at http://HOST:PORT/ and the API docs at /docs.

Each model is served under its file name (demo/ptq.pt2 -> ptq) or NAME=PATH; the first is the default.
  litquant serve demo/ptq.pt2 demo/fp32.pt2
  curl -F file=@digit.png 'http://127.0.0.1:8000/predict?model=fp32'

By default the models run in the HTTP process (a model call of a few ms or less: nothing is faster);
--workers N runs them in N LitServe worker processes instead (models slow enough to be worth a process
each, on a machine with the cores for them)."""


def serve_parser() -> ArgumentParser:
    parser = command_parser("litquant serve", DESCRIPTION)
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".pt2/.onnx artifacts or .ckpt checkpoints "
                        "(PATH or NAME=PATH)")
    parser.add_argument("--host", default="127.0.0.1", help=f"address to bind: one of {', '.join(HOSTS)} "
                        "(default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port, 1024-65535 (default: 8000)")
    parser.add_argument("--max_batch_size", type=int, default=64, help="largest dynamic batch (1: no batching; "
                        "default: 64)")
    parser.add_argument("--batch_timeout", type=float, default=0.0, help="seconds a batch waits for more requests "
                        "(default: 0, never: requests that arrive while the model runs form the next batch)")
    parser.add_argument("--workers", type=int, default=0, help="0: the models run in the HTTP process (default); "
                        "N: in N LitServe worker processes, which split the CPU threads")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of each model call (default: "
                        "all cores but one in the HTTP process, which reads and decodes the requests on the one "
                        "left; the cores split between the workers with --workers)")
    add_runner_argument(parser, where="where the models run")
    return parser


def announce_when_ready(url: str, names: list[str], timeout_s: float = 3600.0) -> None:
    """Print one line once ``/health`` answers 200 (every worker has loaded and compiled its models)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}health", timeout=2) as response:
                if response.status == 200:
                    print(f"litquant serve: ready at {url} (models: {', '.join(names)}; API docs at {url}docs)",
                          flush=True)
                    return
        except OSError:
            pass
        time.sleep(0.2)


_MAIN_PID = os.getpid()


def _stop(signum: int, frame) -> None:
    """SIGTERM: in the main process, stop as on Ctrl+C (LitServer.run then shuts its workers down); in the HTTP
    process forked from it (uvicorn passes the signal on once it has closed), just end."""
    if os.getpid() == _MAIN_PID:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def cmd_serve(argv: Sequence[str]) -> None:
    """Parse ``argv``, load the models, serve until SIGINT/SIGTERM. Bad input raises ``UserError``."""
    config = serve_parser().parse_args(list(argv))
    if config.host not in HOSTS:
        raise UserError(f"--host {config.host}: choose one of {', '.join(HOSTS)}")
    if not 1024 <= config.port <= 65535:
        raise UserError(f"--port {config.port}: choose a port from 1024 to 65535")
    threads_valid = config.threads is None or config.threads >= 1
    if config.max_batch_size < 1 or config.workers < 0 or config.batch_timeout < 0 or not threads_valid:
        raise UserError("--max_batch_size and --threads must be at least 1, --workers and --batch_timeout at "
                         "least 0")
    from litquant.serve.app import served_models

    models = served_models(config.models)
    host = "127.0.0.1" if config.host == "0.0.0.0" else "[::1]" if config.host == "::" else config.host
    url = f"http://{host}:{config.port}/"
    print(f"litquant serve: loading and compiling {', '.join(m.name for m in models)} "
          f"(max_batch_size {config.max_batch_size}, "
          f"{f'{config.workers} worker process(es)' if config.workers else 'in the HTTP process'})...",
          file=sys.stderr, flush=True)
    threading.Thread(target=announce_when_ready, args=(url, [m.name for m in models]), daemon=True).start()
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        if config.workers:
            serve_with_workers(config, models)
        else:
            serve_in_process(config, models)
    print("litquant serve: stopped", file=sys.stderr, flush=True)


def serve_in_process(config: Namespace, models: list) -> None:
    """The models loaded and compiled here, then one uvicorn server running them between requests."""
    import uvicorn

    from litquant.serve.app import build_app
    from litquant.serve.models import load_models

    threads = config.threads or max(1, (os.cpu_count() or 1) - 1)
    loaded = load_models({m.name: str(m.path) for m in models}, config.runner, config.max_batch_size, threads)
    app = build_app(models, loaded, config.max_batch_size, config.batch_timeout)
    uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                                  access_log=False)).run()


def serve_with_workers(config: Namespace, models: list) -> None:
    """Every model checked here (one line on a bad file, not a traceback in a worker), then LitServe's HTTP
    process and ``--workers`` worker processes."""
    import torch

    from litquant.artifacts.loading import load_model
    from litquant.serve.litserve_server import build_server
    from litquant.serve.models import warmup_sizes

    for model in models:  # fail here with one line, not later in a worker process
        load_model(str(model.path), runner="eager")
    if config.runner == "aot":  # build the packages once here; the workers then load them from the cache
        for model in models:
            sizes = warmup_sizes(config.max_batch_size)
            loaded = load_model(str(model.path), "aot", batch_sizes=sizes)
            with torch.inference_mode():
                for size in sizes:
                    loaded(torch.zeros(size, 1, 28, 28))
    server = build_server(models, config.max_batch_size, config.batch_timeout, config.workers, config.runner,
                          threads=config.threads)
    server.run(host=config.host, port=config.port, num_api_servers=1, log_level="warning",
               generate_client_file=False)
