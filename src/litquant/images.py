"""Image files to MNIST input: grey, 28×28, white on black, framed as the dataset's own images are.

Any size, colour or grey, RGBA, palette and 16-bit PNGs, JPEG, BMP, GIF, WebP and TIFF are read. The
background is made black (the image is inverted when its border is light) and the ink's bounding box is cut
out. Then, as the dataset was made (``framing``):

- ``"digit"`` (MNIST): the box is scaled so its longer side is 20 pixels (aspect ratio kept) and pasted into
  a 28×28 field with its centre of mass at the centre;
- ``"object"`` (Fashion-MNIST): the box is scaled so its longer side is 28 pixels and centred.

Example::

    from litquant.artifacts.loading import load_model
    from litquant.data import DATASETS
    from litquant.images import classify, format_predictions, load_images

    paths, images = load_images(["digits/"])           # numpy uint8 [N, 1, 28, 28]
    model = load_model("quantized/onnxruntime.int8.onnx")
    print(format_predictions(paths, classify(model, images, DATASETS["mnist"].normalize)))

numpy and PIL only: importing this module, reading images and classifying them with an ``.onnx`` model import no
PyTorch (:func:`on_numpy` runs a PyTorch model on them).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "FRAMINGS",
    "ImageInputError",
    "classify",
    "decode_image",
    "find_images",
    "format_predictions",
    "load_image",
    "load_images",
    "on_numpy",
    "printable",
    "read_images",
    "to_mnist",
]

#: The decoders PIL may use: only image formats. Anything else (EPS, PDF and the like, which PIL would hand to
#: external programs such as Ghostscript) is "not an image file", whatever its name.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
FRAMINGS = {"digit": 20.0, "object": 28.0}  # longer side of the picture in the 28×28 image
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 50_000_000  # larger images are refused: not digit pictures, maybe decompression bombs
_WORK_SIZE = 2048  # larger images are downscaled to this first: the digit ends up 20 px anyway
_INK_THRESHOLD = 0.2  # fraction of the ink's peak that counts as ink for the bounding box
_MIN_CONTRAST = 0.1  # an image whose ink is fainter than this (out of 1) over its background is blank


class ImageInputError(ValueError):
    """An input image is missing, unreadable, too large or not an image. The message says what to do."""


def printable(text: str | os.PathLike, limit: int | None = None) -> str:
    """``text`` safe to print on a terminal: control characters (newlines, escape sequences) are shown escaped,
    e.g. ``\\n`` and ``\\x1b``; other characters, non-ASCII letters included, are kept. With ``limit``, at most
    that many characters (a longer text ends in ``...``)."""
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))
    return shown if limit is None or len(shown) <= limit else shown[:max(limit - 3, 0)] + "..."


def find_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded to the image files directly inside them (sorted, dotfiles skipped)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            try:
                inside = sorted(
                    p for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
                )
            except OSError as err:
                reason = err.strerror or type(err).__name__
                raise ImageInputError(
                    f"{printable(path)}: cannot list the folder ({reason}); check its permissions"
                ) from None
            if not inside:
                suffixes = " ".join(IMAGE_EXTENSIONS)
                raise ImageInputError(f"{printable(path)}: folder holds no image files ({suffixes}); put images in it")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ImageInputError(f"{printable(path)}: no such file or folder; check the path")
    if not found:
        raise ImageInputError("no images given; pass image files or folders that hold images")
    return found


def load_image(path: str | os.PathLike, framing: str = "digit") -> np.ndarray:
    """Read one image file and convert it as MNIST expects: ``uint8`` ``[1, 28, 28]``, white on black."""
    return to_mnist(_read_grey(Path(path)), framing)[None]


def load_images(paths: Sequence[str | os.PathLike], framing: str = "digit") -> tuple[list[Path], np.ndarray]:
    """:func:`find_images`, then :func:`load_image` on each: the files and a ``uint8`` ``[N, 1, 28, 28]``.

    Raises:
        ImageInputError: the first file that cannot be read (use :func:`read_images` to skip such files).
    """
    files, images, problems = read_images(paths, framing)
    if problems:
        raise problems[0]
    return files, images


def read_images(
    paths: Sequence[str | os.PathLike], framing: str = "digit"
) -> tuple[list[Path], np.ndarray, list[ImageInputError]]:
    """Like :func:`load_images`, but a file that cannot be read is skipped: the files read, their ``uint8``
    ``[N, 1, 28, 28]`` images (``N`` may be 0), and one :class:`ImageInputError` per skipped file."""
    files, images, problems = [], [], []
    for file in find_images(paths):
        try:
            images.append(load_image(file, framing))
        except ImageInputError as problem:
            problems.append(problem)
        else:
            files.append(file)
    stacked = np.stack(images) if images else np.empty((0, 1, 28, 28), dtype=np.uint8)
    return files, stacked, problems


def to_mnist(grey: np.ndarray, framing: str = "digit") -> np.ndarray:
    """Grey image (float, 0 = black, 1 = white, any size) to a ``uint8`` 28×28 image framed as ``framing``
    says: ``"digit"`` (MNIST) or ``"object"`` (Fashion-MNIST)."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")
    grey = np.asarray(grey, dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: make the digit white on black
        grey = 1.0 - grey
        border = 1.0 - border
    background = float(np.median(border))
    out = np.zeros((28, 28), dtype=np.uint8)
    candidates = grey[grey - background >= _MIN_CONTRAST]
    if candidates.size == 0:
        return out  # blank image: nothing to centre
    peak = float(np.percentile(candidates, 99))  # robust to a few bright specks, however small the digit
    ink = np.clip((grey - background) / (peak - background), 0.0, 1.0)
    rows = np.flatnonzero((ink >= _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink >= _INK_THRESHOLD).any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = ink.shape
    scale = FRAMINGS[framing] / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if size != ink.shape:
        ink = np.clip(_resize(ink, size), 0.0, 1.0)
    digit = np.rint(ink * 255.0).astype(np.uint8)
    height, width = digit.shape
    weights = digit.astype(np.float64)
    total = weights.sum()
    if total == 0:
        return out
    if framing == "object":  # the box in the middle
        top, left = (28 - height) // 2, (28 - width) // 2
    else:  # the centre of mass in the middle
        centre_y = (weights.sum(axis=1) * np.arange(height)).sum() / total
        centre_x = (weights.sum(axis=0) * np.arange(width)).sum() / total
        top = int(np.clip(round(14.0 - centre_y), 0, 28 - height))
        left = int(np.clip(round(14.0 - centre_x), 0, 28 - width))
    out[top : top + height, left : left + width] = digit
    return out


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (float, 2-D) resized to ``size`` by an antialiased bilinear filter, as
    ``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)`` resizes it: the
    width first, then the height, with the very weights PyTorch computes, each output summed in ``float64`` and
    rounded to ``float32`` once (PyTorch's ``float32`` sums differ from it by a few units in the last place, by CPU)."""
    resized = np.asarray(image, dtype=np.float32)
    for axis in (1, 0):
        if resized.shape[axis] != size[axis]:
            resized = _resize_axis(resized, size[axis], axis)
    return resized


def _resize_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """``image`` resized along ``axis`` to ``out_size`` (see :func:`_resize`): each output a weighted sum of the
    inputs under a triangle filter, widened by the downscale factor, whose weights add up to 1."""
    starts, weights = _filter_weights(image.shape[axis], out_size)
    moved = np.moveaxis(image, axis, -1).astype(np.float64)
    last = moved.shape[-1] - 1
    total = np.zeros((*moved.shape[:-1], out_size))
    for tap in range(weights.shape[1]):
        total += moved[..., np.minimum(starts + tap, last)] * weights[:, tap].astype(np.float64)
    return np.moveaxis(total.astype(np.float32), -1, axis)


def _filter_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first input of each output and its ``float32`` weights (``[out_size, taps]``, zero past its last
    input), computed with PyTorch's roundings (``float32`` where it keeps ``float32``)."""
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    support = scale if scale >= 1.0 else f32(1.0)
    inverse = f32(1.0 / float(scale)) if scale >= 1.0 else f32(1.0)
    taps = int(np.ceil(support)) * 2 + 1
    starts = np.zeros(out_size, dtype=np.int64)
    weights = np.zeros((out_size, taps), dtype=np.float32)
    for index in range(out_size):
        centre = f32(float(scale) * (index + 0.5))
        start = max(int(float(centre - support) + 0.5), 0)
        count = min(max(min(int(float(centre + support) + 0.5), in_size) - start, 0), taps)
        distances = [abs(f32((float(f32(start + tap) - centre) + 0.5) * float(inverse))) for tap in range(count)]
        row = [f32(1.0 - float(distance)) if distance < 1.0 else f32(0.0) for distance in distances]
        total = f32(0.0)
        for weight in row:
            total = f32(total + weight)
        if total != 0.0:
            row = [f32(weight / total) for weight in row]
        starts[index] = start
        weights[index, :count] = row
    return starts, weights


def classify(
    model: Callable[[np.ndarray], Any],
    images: np.ndarray,
    normalize: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 256,
) -> list[tuple[int, float]]:
    """Label and confidence (the largest softmax probability) for each ``uint8`` ``[N, 1, 28, 28]`` image.

    Args:
        model: maps a normalised ``float32`` numpy batch to logits (a numpy array, or anything ``np.asarray``
            reads): an ``.onnx`` model as loaded, a PyTorch one through :func:`on_numpy`.
        images: the images, ``uint8`` ``[N, 1, 28, 28]``.
        normalize: ``uint8`` images to the model's float input (:meth:`~litquant.data.DatasetSpec.normalize`).
        batch_size: images per model call.
    """
    results: list[tuple[int, float]] = []
    for start in range(0, len(images), batch_size):
        logits = np.asarray(model(normalize(images[start : start + batch_size])), dtype=np.float32)
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
        results.extend(zip(probabilities.argmax(axis=1).tolist(), probabilities.max(axis=1).tolist(), strict=True))
    return results


def on_numpy(model: Callable[..., Any], device: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A PyTorch model (an ``nn.Module`` or any callable on tensors) as :func:`classify` calls it: a numpy batch
    in, moved to ``device`` (default: the device of an ``nn.Module``'s parameters, else the CPU), run under
    ``torch.inference_mode()``, its logits back as a ``float32`` numpy array. An ``nn.Module`` runs in eval mode,
    its training mode restored after each call. Imports PyTorch."""
    import torch

    if device is None and isinstance(model, torch.nn.Module):
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else None

    def run(batch: np.ndarray) -> np.ndarray:
        training = isinstance(model, torch.nn.Module) and model.training
        if training:
            model.eval()
        try:
            with torch.inference_mode():
                logits = model(torch.from_numpy(np.ascontiguousarray(batch)).to(device or "cpu"))
                return torch.as_tensor(logits).float().cpu().numpy()
        finally:
            if training:
                model.train()

    return run


def format_predictions(
    paths: Sequence[str | os.PathLike],
    predictions: Sequence[tuple[int, float]],
    classes: Sequence[str] | None = None,
) -> str:
    """One aligned line per image: file, label (the class name when ``classes`` is given), confidence."""
    if len(paths) != len(predictions):
        raise ValueError(f"{len(paths)} paths but {len(predictions)} predictions")
    names = [printable(path) for path in paths]
    labels = [classes[label] if classes else str(label) for label, _ in predictions]
    file_width = max([len("file"), *map(len, names)])
    label_width = max([len("label"), *map(len, labels)])
    lines = [f"{'file':<{file_width}}  {'label':<{label_width}}  confidence"]
    for name, label, (_, confidence) in zip(names, labels, predictions, strict=True):
        lines.append(f"{name:<{file_width}}  {label:<{label_width}}  {confidence:.4f}")
    return "\n".join(lines)


def _read_grey(path: Path) -> np.ndarray:
    """Decode ``path`` to a float grey array (0 = black, 1 = white), downscaled when very large."""
    if not path.is_file():
        raise ImageInputError(f"{printable(path)}: no such file; check the path")
    if path.stat().st_size == 0:
        raise ImageInputError(f"{printable(path)}: empty file; give a PNG, JPEG or other image file")
    return _decode_grey(path, printable(path), MAX_PIXELS)


def decode_image(data: bytes, framing: str = "digit", name: str = "image",
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes (an upload) to MNIST input, as :func:`load_image` reads a file: ``uint8`` ``[1, 28, 28]``.

    The size is checked from the header before any pixel is decoded: an image over ``max_pixels`` pixels is
    refused with :class:`ImageInputError` (as are empty and non-image bytes); ``name`` starts the messages.
    """
    if not data:
        raise ImageInputError(f"{printable(name)}: empty; give a PNG, JPEG or other image file")
    grey = _decode_grey(io.BytesIO(data), printable(name), max_pixels)
    return to_mnist(grey, framing)[None]


def _decode_grey(source: Path | BinaryIO, name: str, max_pixels: int) -> np.ndarray:
    """Decode an image file or stream (of the formats in ``IMAGE_FORMATS`` only) to a float grey array, refusing
    more than ``max_pixels`` pixels; ``name`` (already printable) starts the messages."""
    limit = f"{max_pixels / 1_000_000:g}-megapixel"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageInputError(
                        f"{name}: {width}×{height} pixels is over the {limit} limit; crop or shrink the image "
                        "around the digit"
                    )
                if image.format == "JPEG":  # decode big JPEGs at a reduced scale directly
                    image.draft("RGB" if image.mode == "RGB" else image.mode, (_WORK_SIZE, _WORK_SIZE))
                image = ImageOps.exif_transpose(image)
                return _to_grey(image)
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(f"{name}: image over the {limit} limit; crop or shrink it around the digit") from None
    except PermissionError:
        raise ImageInputError(f"{name}: cannot read the file (permission denied); check its permissions") from None
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{name}: not an image file ({', '.join(IMAGE_FORMATS)}); give a PNG, JPEG or other image"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ImageInputError(f"{name}: cannot decode the image ({reason}); re-save it") from None


def _to_grey(image: Image.Image) -> np.ndarray:
    """Any PIL mode to a float grey array in 0..1; transparency is composited on a contrasting background."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        sixteen_bit = image.mode.startswith("I;16")
        image = _shrink(image.convert("F" if image.mode == "F" else "I"))
        values = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
        top = values.max(initial=0.0)
        if sixteen_bit:
            scale = 65535.0
        elif image.mode == "F" and top <= 1.0:
            scale = 1.0
        else:
            scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        return (values / scale).astype(np.float32)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    image = _shrink(image)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    grey = pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
    if has_alpha:
        alpha = pixels[..., 3]
        if alpha.min() < 1.0:
            weight = alpha.sum()
            content = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
            background = 1.0 if content < 0.5 else 0.0  # dark strokes on transparency: paper is white
            grey = grey * alpha + background * (1.0 - alpha)
    return grey


def _shrink(image: Image.Image) -> Image.Image:
    if max(image.size) <= _WORK_SIZE:
        return image
    scale = _WORK_SIZE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)
