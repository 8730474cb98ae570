"""A request's input, read into exactly what the models take: a ``uint8`` 28×28 array, and a model name.

Built from parsed values only: the body is read up to a limit, JSON is parsed with its depth bounded by a
catch of the parser's own limit, ``pixels`` must be 28 lists of 28 plain numbers from 0 to 255 (checked
one by one before any array is made), a ``data:`` URL is split where its comma is, and anything else that goes
wrong while reading a request is answered 400 with one line (:func:`read_input` never lets an exception out
as anything but an :class:`~fastapi.HTTPException`).

A small PNG (at most :data:`INLINE_MAX_PIXELS` pixels by its header, as MNIST-sized uploads are) is decoded
on the event loop: that costs less than the hop to a thread and back. Every other image is decoded in a
bounded thread pool, off the event loop: one 16-megapixel upload keeps one decoding thread busy for a second,
while small requests go on being answered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import HTTPException, Request

from litquant.images import ImageInputError, decode_image

#: Largest request body (bytes); larger ones get 413 before they are read whole.
MAX_BODY_BYTES = 5 * 1024 * 1024
#: Largest image (pixels, read from the header before decoding); larger ones get 413.
MAX_IMAGE_PIXELS = 16_000_000
#: Largest PNG (pixels, by its header) decoded on the event loop: about 0.5 ms, less than a hop to a thread and back
#: costs under load (``benchmarks/results/serve.*.md``); larger or other images go to the decoding threads.
INLINE_MAX_PIXELS = 128 * 128
#: Threads decoding images; more uploads than this wait for a free one (the event loop does not).
DECODE_THREADS = max(2, min(4, os.cpu_count() or 1))

_decoders = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="litquant-decode")

PIXELS_RULE = '"pixels" must be 28 rows of 28 numbers from 0 to 255 (white digit on black)'


async def read_input(request: Request) -> tuple[np.ndarray, str | None]:
    """The request's image as a framed ``uint8`` 28×28 array, and the model it asks for (or ``None``); every
    problem is an ``HTTPException`` with a 4xx status and a one-line message."""
    try:
        return await _read_input(request)
    except HTTPException:
        raise
    except Exception as err:  # whatever else a malformed request raises: a 400 that says what to send
        raise HTTPException(400, f"cannot read the request ({type(err).__name__}); send an image as multipart "
                                 'file=..., a raw image/png body, or JSON {"image": BASE64_PNG}') from None


async def read_body(request: Request) -> bytes:
    """The whole body, refused with 413 as soon as it is over :data:`MAX_BODY_BYTES` (declared or streamed)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _too_large(int(length))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Starlette's own parsers (the multipart form) read from then on
    return body


def _too_large(size: int) -> HTTPException:
    return HTTPException(413, f"request body of {size} bytes is over the {MAX_BODY_BYTES} byte limit; "
                              "send a smaller image")


async def _read_input(request: Request) -> tuple[np.ndarray, str | None]:
    body = await read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    model = request.query_params.get("model")
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        chosen = form.get("model")
        model = chosen if isinstance(chosen, str) and chosen else model
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart request without a 'file' part; send the image as file=@digit.png")
        return await frame(await upload.read(), upload.filename or "upload"), model
    if content_type == "application/json":
        return await json_input(body, model)
    if content_type.startswith("image/"):
        return await frame(body, "body"), model
    raise HTTPException(415, f"unsupported content type {content_type[:64] or 'none'!r}; send multipart/form-data "
                             "(file=...), application/json or image/png")


async def json_input(body: bytes, model: str | None) -> tuple[np.ndarray, str | None]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise HTTPException(400, "request body is not valid JSON (or nested too deeply)") from None
    if not isinstance(parsed, dict):
        raise HTTPException(400, 'JSON body must be an object: {"image": BASE64_PNG} or {"pixels": 28x28}')
    chosen = parsed.get("model")
    if chosen is not None and not isinstance(chosen, str):
        raise HTTPException(400, '"model" must be a string: the name of a served model')
    model = chosen or model
    if "pixels" in parsed:
        return pixels_input(parsed["pixels"]), model
    image = parsed.get("image")
    if isinstance(image, str):
        if image.startswith("data:"):
            header, comma, image = image.partition(",")
            if not comma or not header.endswith(";base64"):
                raise HTTPException(400, "'image' is a data: URL without ';base64,'; send "
                                         "data:image/png;base64,... or the base64 text alone")
        try:
            data = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(400, "'image' is not valid base64; send a base64-encoded PNG") from None
        return await frame(data, "image"), model
    raise HTTPException(400, 'JSON body needs "image" (base64 PNG) or "pixels" (28x28 numbers 0-255)')


async def frame(data: bytes, name: str) -> np.ndarray:
    """Image file bytes to the framed 28×28 digit: a small PNG on the event loop, any other image in the decoding
    threads."""
    try:
        if png_pixels(data) <= INLINE_MAX_PIXELS:
            image = decode_image(data, "digit", name, MAX_IMAGE_PIXELS)
        else:
            image = await asyncio.get_running_loop().run_in_executor(
                _decoders, decode_image, data, "digit", name, MAX_IMAGE_PIXELS)
    except ImageInputError as err:
        raise HTTPException(413 if "limit" in str(err) else 400, str(err)) from None
    return image[0]


def png_pixels(data: bytes) -> int:
    """Width × height from a PNG's header (the IHDR chunk that must come first), what the decoder will decode;
    a number above any limit when ``data`` does not start as a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return MAX_IMAGE_PIXELS + 1
    width, height = struct.unpack(">II", data[16:24])
    return width * height


def pixels_input(pixels: Any) -> np.ndarray:
    """28 lists of 28 numbers (``int`` or finite ``float``, not ``bool``) from 0 to 255, rounded to ``uint8``."""
    if not isinstance(pixels, list) or len(pixels) != 28:
        raise HTTPException(400, PIXELS_RULE)
    values: list[float] = []
    for row in pixels:
        if not isinstance(row, list) or len(row) != 28:
            raise HTTPException(400, PIXELS_RULE)
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 255:
                raise HTTPException(400, PIXELS_RULE)  # NaN fails the comparison; a huge int fails the range
            values.append(float(value))
    return np.rint(np.array(values, dtype=np.float64)).astype(np.uint8).reshape(28, 28)
