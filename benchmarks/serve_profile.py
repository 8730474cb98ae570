"""Where the time of one ``/predict`` request goes: each step on the path of ``litquant serve``, timed alone.

In this process, each step is run ``repeats`` times and its median is kept: the multipart parse (Starlette,
as the server parses it), the image decode and framing, a hop to a thread pool and back (the server makes one,
for the model: a small PNG is decoded on the event loop, a larger image takes a second hop), the model call on
a batch of one (normalisation and softmax included), the JSON answer and the 28×28 PNG returned as ``input``.
The HTTP round trip itself (uvicorn, the socket and the load generator's client) is measured end to end by
``benchmarks/serve.py`` against the baseline server's ``/echo``; the queue to LitServe worker processes and
back by its LitServe rows. ``serve.py`` writes this breakdown into its results file.

    python benchmarks/serve_profile.py MODEL.onnx
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.requests import Request

BOUNDARY = "litquant-bench"


def multipart_body(png: bytes) -> bytes:
    """A multipart body with one ``file`` part holding ``png``, as the load generator sends it."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def _median_us(step: Callable[[], object], repeats: int) -> float:
    step()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _parse_form(body: bytes) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def parse() -> None:
        headers = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
                   (b"content-length", str(len(body)).encode())]
        request = Request({"type": "http", "method": "POST", "path": "/predict", "headers": headers}, receive)
        form = await request.form(max_files=1, max_fields=4)
        await form["file"].read()
        await form.close()

    asyncio.run(parse())


def stage_costs(model_path: str, png: bytes, repeats: int = 300) -> dict[str, float]:
    """Median microseconds of each step of one request, in the order the server takes them."""
    from litquant.images import decode_image
    from litquant.serve.app import png_data_url
    from litquant.serve.models import load_models, run_batch

    models = load_models({"int8": model_path}, runner="eager", max_batch_size=1)
    pixels = decode_image(png)[0]
    body = multipart_body(png)
    pool = ThreadPoolExecutor(1)
    loop = asyncio.new_event_loop()

    def hop() -> None:
        loop.run_until_complete(loop.run_in_executor(pool, int))

    answer = {"model": "int8", "label": 1, "probabilities": run_batch(models, [pixels], [["int8"]])[0]["int8"]
              ["probabilities"], "latency_ms": 1.0, "inference_ms": 0.2, "batch_size": 1}
    steps = {
        "multipart parse (Starlette)": lambda: _parse_form(body),
        "asyncio.run overhead (subtracted from the parse)": lambda: asyncio.run(asyncio.sleep(0)),
        "image decode and framing (PIL, litquant.images)": lambda: decode_image(png),
        "hop to a thread and back (the model call)": hop,
        "model call, batch of 1 (int8 ONNX, normalise + softmax)": lambda: run_batch(models, [pixels], [["int8"]]),
        "JSON answer": lambda: JSONResponse(answer).body,
        "28x28 input PNG in the answer (/compare, ?input=true)": lambda: png_data_url(pixels),
    }
    costs = {name: _median_us(step, repeats) for name, step in steps.items()}
    overhead = costs.pop("asyncio.run overhead (subtracted from the parse)")
    costs["multipart parse (Starlette)"] = max(0.0, costs["multipart parse (Starlette)"] - overhead)
    loop.close()
    pool.shutdown()
    return costs


def main() -> None:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    for name, us in stage_costs(sys.argv[1], buffer.getvalue()).items():
        print(f"{us:8.1f} us  {name}")


if __name__ == "__main__":
    main()
