"""``litquant serve``: a real server process on 127.0.0.1, real PNGs, bad inputs, and the page in Chromium.

One tiny model is trained once (1 epoch on 5000 real digits), exported to int8 with ``litquant quantize``,
and both the checkpoint and the ``.pt2`` are served by one server process shared by the tests.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import command_env, free_port, run_litquant
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, mnist_dir: Path) -> tuple[Path, Path]:
    """A checkpoint trained for 1 epoch on 5000 real digits, and its int8 ``ptq.pt2``."""
    workdir = tmp_path_factory.mktemp("serve-models")
    data = [f"--data.data_dir={mnist_dir}", "--data.train_size=5000", "--data.val_size=500",
            "--data.test_size=500"]
    run_litquant("fit", "--trainer.max_epochs=1", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                 "--trainer.enable_model_summary=false", *data, cwd=workdir, timeout=900)
    checkpoint = workdir / "runs" / "checkpoints" / "last.ckpt"
    run_litquant("quantize", f"--ckpt_path={checkpoint}", "--method=ptq", "--out=q", "--calibration_batches=4",
                 *data, cwd=workdir, timeout=900)
    return checkpoint, workdir / "q" / "ptq.pt2"


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """``litquant serve`` as a real process, the models in its HTTP process (the default); yields its base URL,
    the process and its output file."""
    checkpoint, artifact = models
    yield from serve(tmp_path_factory.mktemp("serve-log"), str(artifact), f"fp32={checkpoint}", "--max_batch_size",
                     "8")


def serve(folder: Path, *arguments: str):
    """Start ``litquant serve ARGUMENTS`` on a free port, wait until it is ready, yield (URL, process, log), and
    kill it if it is still running afterwards."""
    port = free_port()
    log = folder / "out.txt"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "litquant.cli", "serve", *arguments, "--port", str(port)],
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=command_env())
    try:
        deadline = time.monotonic() + 600
        while "ready at" not in log.read_text():
            assert process.poll() is None, f"server exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"server not ready in 600 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/", process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def request(url: str, data: bytes | None = None, content_type: str | None = None) -> tuple[int, dict | str]:
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=60) as response:
            status, body, kind = response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        status, body, kind = err.code, err.read(), err.headers.get("content-type", "")
    return status, json.loads(body) if "json" in kind else body.decode()


def post_oversized(url: str, size: int) -> tuple[int, dict]:
    """POST ``size`` bytes in 1 MB chunks; the server may answer and close before the body is sent."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", parts.path)
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    try:
        for _ in range(size // (1024 * 1024)):
            connection.send(b"\0" * (1024 * 1024))
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused early: the answer is already there
    response = connection.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def multipart(data: bytes, filename: str = "digit.png", **fields: str) -> tuple[bytes, str]:
    boundary = "litquant-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawn_one() -> bytes:
    """A "1" drawn as a pen would: a dark vertical stroke on white paper, 200×200."""
    picture = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(picture).line([(100, 30), (100, 170)], fill=0, width=14)
    return png(picture)


@pytest.fixture(scope="module")
def mnist_pngs(mnist_dir: Path) -> list[tuple[bytes, int]]:
    from litquant.data import read_idx

    images = read_idx(mnist_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:20]
    labels = read_idx(mnist_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")[:20].tolist()
    return [(png(Image.fromarray(image)), label) for image, label in zip(images, labels, strict=True)]


def test_health_models_and_docs(server) -> None:
    url, _, log = server
    assert "ready at" in log.read_text() and "compiling" in log.read_text()
    assert request(url + "health") == (200, "ok")
    status, body = request(url + "models")
    assert status == 200 and [m["name"] for m in body["models"]] == ["ptq", "fp32"]
    ptq = body["models"][0]
    assert ptq["method"] == "ptq" and ptq["precision"] == "int8" and ptq["size_bytes"] > 0
    status, schema = request(url + "openapi.json")
    assert status == 200 and {"/predict", "/compare", "/models", "/metrics"} <= set(schema["paths"])


def test_real_mnist_digits_are_classified_by_both_models(server, mnist_pngs) -> None:
    url, _, _ = server
    for model in ("ptq", "fp32"):
        correct = 0
        for data, label in mnist_pngs:
            body, kind = multipart(data, model=model)
            status, answer = request(url + "predict", body, kind)
            assert status == 200, answer
            assert answer["model"] == model and len(answer["probabilities"]) == 10
            assert abs(sum(answer["probabilities"]) - 1) < 1e-3 and answer["latency_ms"] > 0
            correct += answer["label"] == label
        assert correct >= 17, f"{model}: {correct}/20 real test digits right"


def test_json_inputs_and_compare(server, mnist_pngs) -> None:
    url, _, _ = server
    data, label = mnist_pngs[0]
    pixels = np.asarray(Image.open(io.BytesIO(data))).tolist()
    status, answer = request(url + "predict", json.dumps({"pixels": pixels, "model": "fp32"}).encode(),
                             "application/json")
    assert status == 200 and answer["label"] == label and answer["model"] == "fp32"
    status, answer = request(url + "predict", json.dumps({"image": base64.b64encode(data).decode()}).encode(),
                             "application/json")
    assert status == 200 and answer["label"] == label and answer["model"] == "ptq"  # the first is the default
    status, answer = request(url + "compare", drawn_one(), "image/png")
    assert status == 200 and set(answer["results"]) == {"ptq", "fp32"}
    assert {result["label"] for result in answer["results"].values()} == {1}
    assert answer["input"].startswith("data:image/png;base64,")


def test_bad_inputs_get_a_one_line_4xx_and_the_server_keeps_answering(server, mnist_pngs) -> None:
    url, process, _ = server
    huge = io.BytesIO()
    Image.new("1", (20000, 20000)).save(huge, format="PNG")  # 400 megapixels, a small file
    cases = [
        (multipart(b"this is not an image"), 400, "not an image"),
        ((b"", "image/png"), 400, "empty"),
        (multipart(huge.getvalue()), 413, "megapixel limit"),
        ((b"hello", "text/plain"), 415, "content type"),
        ((b"{not json", "application/json"), 400, "JSON"),
        ((json.dumps({"pixels": [[1, 2]]}).encode(), "application/json"), 400, "28 rows"),
        (multipart(mnist_pngs[0][0], model="nope"), 404, "unknown model"),
    ]
    for (body, kind), status, needle in cases:
        got, answer = request(url + "predict", body, kind)
        assert got == status and needle in answer["error"] and "\n" not in answer["error"], (needle, got, answer)
    status, answer = post_oversized(url + "predict", 50 * 1024 * 1024)  # a 50 MB upload
    assert status == 413 and "limit" in answer["error"]
    assert process.poll() is None
    status, answer = request(url + "predict", *multipart(mnist_pngs[0][0]))
    assert status == 200 and answer["label"] == mnist_pngs[0][1]
    status, metrics = request(url + "metrics")
    assert 'litquant_requests_total{endpoint="/predict",status="413"} 2' in metrics
    assert 'litquant_request_latency_ms{endpoint="/predict",quantile="0.99"}' in metrics
    assert "litquant_batch_inputs_total" in metrics


def malformed_requests(png_data: bytes) -> list[tuple[str, bytes, str, int, str]]:
    """Requests no exception of the server may answer with a 500 or plain text: (what, body, type, status, words
    the one-line error must hold)."""
    pixels = np.zeros((28, 28), dtype=int).tolist()
    huge_number = [[int("9" * 4000)] * 28] + pixels[1:]  # parses as JSON; no float holds it
    as_json = "application/json"
    return [
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000, as_json, 400, "JSON"),
        ("a data: URL without a comma", json.dumps({"image": "data:image/png;base64"}).encode(), as_json, 400,
         "data: URL"),
        ("a 4,000-digit integer in pixels", json.dumps({"pixels": huge_number}).encode(), as_json, 400, "28 rows"),
        ("booleans as pixels", json.dumps({"pixels": [[True] * 28] * 28}).encode(), as_json, 400, "28 rows"),
        ("NaN in pixels", json.dumps({"pixels": [[float("nan")] * 28] * 28}).encode(), as_json, 400, "28 rows"),
        ("a number as the model name", json.dumps({"pixels": pixels, "model": 7}).encode(), as_json, 400, "model"),
        ("a JSON list", b"[1, 2]", as_json, 400, "object"),
        ("an image that is not base64", json.dumps({"image": "%%%"}).encode(), as_json, 400, "base64"),
        ("a multipart body without its boundary", b"--x\r\n", "multipart/form-data", 400, ""),
        ("a multipart body cut short", multipart(png_data)[0][:60], multipart(png_data)[1], 400, ""),
        ("a multipart body without a file",
         b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nptq\r\n--b--\r\n',
         "multipart/form-data; boundary=b", 400, "file"),
    ]


def test_every_malformed_request_gets_a_one_line_json_4xx(server, mnist_pngs) -> None:
    url, process, _ = server
    for what, body, kind, status, needle in malformed_requests(mnist_pngs[0][0]):
        got, answer = request(url + "predict", body, kind)
        assert isinstance(answer, dict), (what, got, answer)
        assert got == status and needle in answer["error"] and "\n" not in answer["error"], (what, got, answer)
    got, answer = request(url + "predict?input=maybe", *multipart(mnist_pngs[0][0]))
    assert got == 422 and "\n" not in answer["error"], answer
    got, answer = request(url + "predict?input=true", *multipart(mnist_pngs[0][0]))
    assert got == 200 and answer["input"].startswith("data:image/png;base64,")
    assert process.poll() is None


def big_png() -> bytes:
    """A 16-megapixel PNG of a "1" (the largest image the server takes): small on the wire, a second to decode."""
    picture = Image.new("L", (4000, 4000), 255)
    ImageDraw.Draw(picture).line([(2000, 600), (2000, 3400)], fill=0, width=280)
    return png(picture)


def test_a_large_image_being_decoded_does_not_hold_up_small_requests(server, mnist_pngs) -> None:
    url, _, _ = server
    big = multipart(big_png())
    answers: list = []
    upload = threading.Thread(target=lambda: answers.append(request(url + "predict", *big)))
    upload.start()
    time.sleep(0.05)  # the large upload is read and its decoding has begun
    start = time.perf_counter()
    status, answer = request(url + "predict", *multipart(mnist_pngs[0][0]))
    elapsed = time.perf_counter() - start
    still_decoding = upload.is_alive()
    upload.join(timeout=60)
    assert status == 200 and answer["label"] == mnist_pngs[0][1]
    assert answers and answers[0][0] == 200 and answers[0][1]["label"] == 1, answers
    assert elapsed < 0.2, f"a small request took {elapsed * 1000:.0f} ms while a large image was being decoded"
    assert still_decoding, "the 16-megapixel image was answered before the small request: nothing was tested"


def test_the_page_draws_a_digit_and_shows_the_label_in_chromium(server, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: install Debian's `chromium` package (.ci/run does) to run "
                    "the browser test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the `playwright` Python package is missing: pip install -e '.[dev]'")
    url, _, _ = server
    update = os.environ.get("LITQUANT_UPDATE_SCREENSHOT") == "1"
    screenshot = REPO / "docs" / "images" / "serve-page.png" if update else tmp_path / "serve-page.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 900, "height": 560})
        try:
            page = browser.new_page()
            page.goto(url)
            box = page.locator("#pad").bounding_box()
            # a "7": the top bar, then the slanted stem, drawn with the mouse
            strokes = [(0.25, 0.22), (0.72, 0.22), (0.45, 0.85)]
            page.mouse.move(box["x"] + strokes[0][0] * box["width"], box["y"] + strokes[0][1] * box["height"])
            page.mouse.down()
            for x, y in strokes[1:]:
                page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=12)
            page.mouse.up()
            page.wait_for_function("document.body.dataset.state === 'idle' && "  # the answer to the whole 7
                                   "document.querySelectorAll('#results .model').length === 2", timeout=30_000)
            label = page.locator("#label").inner_text()
            labels = page.locator("#results .model").evaluate_all("els => els.map(e => e.dataset.label)")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert label == "7" and labels == ["7", "7"], (label, labels)
    assert screenshot.stat().st_size > 10_000


def test_sigterm_shuts_the_server_down_cleanly(server) -> None:
    url, process, log = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert "litquant serve: stopped" in log.read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "health", timeout=5)


def test_litserve_workers_serve_the_same_api(models, mnist_pngs, tmp_path: Path) -> None:
    """``--workers 1``: the models in a LitServe worker process, the same answers, errors and shutdown."""
    checkpoint, _ = models
    running = serve(tmp_path, f"fp32={checkpoint}", "--workers", "1", "--max_batch_size", "4")
    url, process, log = next(running)
    try:
        assert "1 worker process" in log.read_text()
        status, body = request(url + "models")
        assert status == 200 and body["workers"] == 1 and body["batch_timeout"] > 0  # LitServe never polls at 0
        correct = 0
        for data, label in mnist_pngs:
            status, answer = request(url + "predict", *multipart(data))
            assert status == 200 and answer["model"] == "fp32", answer
            correct += answer["label"] == label
        assert correct >= 17
        status, answer = request(url + "compare", drawn_one(), "image/png")
        assert status == 200 and answer["results"]["fp32"]["label"] == 1
        what, body, kind, expected, needle = malformed_requests(mnist_pngs[0][0])[0]
        status, answer = request(url + "predict", body, kind)
        assert status == expected and needle in answer["error"], (what, answer)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0 and "litquant serve: stopped" in log.read_text()
    finally:
        running.close()
