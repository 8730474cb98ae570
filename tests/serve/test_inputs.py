"""The serve inputs: which images are decoded on the event loop, and that both paths give the same digit."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from litquant.images import decode_image
from litquant.serve.inputs import INLINE_MAX_PIXELS, MAX_IMAGE_PIXELS, frame, png_pixels


def digit_image(width: int, height: int, format: str = "PNG") -> bytes:
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[height // 4:3 * height // 4, width // 2 - max(1, width // 10):width // 2 + max(1, width // 10)] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


@pytest.mark.parametrize(("width", "height"), [(28, 28), (128, 128), (129, 128), (640, 480)])
def test_png_pixels_reads_the_size_the_decoder_will_decode(width: int, height: int) -> None:
    data = digit_image(width, height)
    assert png_pixels(data) == width * height == Image.open(io.BytesIO(data)).size[0] * height


@pytest.mark.parametrize("mutate", [
    lambda png: digit_image(28, 28, "JPEG"),   # another format: decoded in the threads, whatever its size
    lambda png: png[:20],                      # cut inside the header
    lambda png: b"\0" + png,                   # a byte in front of the signature
    lambda png: png[:12] + b"IDAT" + png[16:],  # a first chunk that is not the header
])
def test_anything_but_a_plain_png_header_counts_as_over_every_limit(mutate) -> None:
    assert png_pixels(mutate(digit_image(28, 28))) > MAX_IMAGE_PIXELS


@pytest.mark.parametrize("side", [28, 128, 300])
def test_small_pngs_inline_and_larger_ones_in_the_threads_give_the_same_digit(side: int) -> None:
    data = digit_image(side, side)
    assert (png_pixels(data) <= INLINE_MAX_PIXELS) == (side <= 128)
    framed = asyncio.run(frame(data, "upload"))
    assert framed.dtype == np.uint8 and framed.shape == (28, 28)
    np.testing.assert_array_equal(framed, np.asarray(decode_image(data)[0]))
