"""Image files to MNIST input: real MNIST test digits written in many forms must come back as themselves."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litquant.data import DATASETS, normalize, read_idx
from litquant.images import (
    ImageInputError,
    classify,
    find_images,
    format_predictions,
    load_image,
    load_images,
    on_numpy,
    printable,
    read_images,
    to_mnist,
)

NUM_DIGITS = 24
MNIST_NORMALIZE = DATASETS["mnist"].normalize


@pytest.fixture(scope="module")
def test_set(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = mnist_dir / "MNIST" / "raw"
    images = read_idx(raw / "t10k-images-idx3-ubyte.gz")
    return images, read_idx(raw / "t10k-labels-idx1-ubyte.gz").astype(np.int64)


@pytest.fixture(scope="module")
def digits(test_set) -> tuple[np.ndarray, np.ndarray]:
    """The digits written to files: the first ones of the MNIST test set."""
    images, labels = test_set
    return images[:NUM_DIGITS], labels[:NUM_DIGITS]


@pytest.fixture(scope="module")
def small_model(test_set) -> torch.nn.Module:
    """Softmax regression on 2,000 other real digits (~85% accuracy, trained in well under a second)."""
    images, labels = test_set
    inputs = normalize(torch.from_numpy(images[1000:3000].copy()).unsqueeze(1))
    targets = torch.from_numpy(labels[1000:3000])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, above all on a busy machine
    try:
        for _ in range(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


# -- the forms a digit is written in ----------------------------------------------------------------------
def _grey(digit: np.ndarray, path: Path) -> Path:
    Image.fromarray(digit).save(path := path.with_suffix(".png"))
    return path


def _black_on_white(digit: np.ndarray, path: Path) -> Path:
    Image.fromarray(255 - digit).save(path := path.with_suffix(".png"))
    return path


def _coloured(digit: np.ndarray, path: Path) -> Path:
    """Dark blue ink on cream paper, RGB."""
    ink, paper, t = np.array([20, 30, 120]), np.array([250, 240, 200]), digit[..., None] / 255.0
    Image.fromarray((paper * (1 - t) + ink * t).astype(np.uint8)).save(path := path.with_suffix(".png"))
    return path


def _rgba_dark_ink(digit: np.ndarray, path: Path) -> Path:
    """Black strokes whose alpha is the digit, on a fully transparent background."""
    pixels = np.zeros((28, 28, 4), np.uint8)
    pixels[..., 3] = digit
    Image.fromarray(pixels).save(path := path.with_suffix(".png"))
    return path


def _la_light_ink(digit: np.ndarray, path: Path) -> Path:
    """White strokes on transparency (grey + alpha)."""
    pixels = np.stack([np.full_like(digit, 255), digit], axis=-1)
    image = Image.fromarray(pixels)
    assert image.mode == "LA"
    image.save(path := path.with_suffix(".png"))
    return path


def _sixteen_bit(digit: np.ndarray, path: Path) -> Path:
    image = Image.fromarray(digit.astype(np.uint16) * 257)
    assert image.mode.startswith("I;16")
    image.save(path := path.with_suffix(".png"))
    return path


def _palette_gif(digit: np.ndarray, path: Path) -> Path:
    Image.fromarray(255 - digit).convert("P").save(path := path.with_suffix(".gif"))
    return path


def _upscaled(digit: np.ndarray, path: Path) -> Path:
    """280×280, black on white, bicubic."""
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).save(path := path.with_suffix(".png"))
    return path


def _jpeg(digit: np.ndarray, path: Path) -> Path:
    """Upscaled to 280×280, black on white, RGB JPEG at quality 80 (compression noise)."""
    image = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).convert("RGB")
    image.save(path := path.with_suffix(".jpg"), quality=80)
    return path


def _off_centre_photo(digit: np.ndarray, path: Path) -> Path:
    """A small digit in the corner of a larger, non-square grey page (TIFF)."""
    page = np.full((300, 420), 215, np.uint8)
    ink = (215 - digit.astype(np.int32) * 200 // 255).astype(np.uint8)
    page[20:104, 30:114] = np.asarray(Image.fromarray(ink).resize((84, 84), Image.Resampling.BICUBIC))
    Image.fromarray(page).save(path := path.with_suffix(".tif"))
    return path


def _exif_rotated(digit: np.ndarray, path: Path) -> Path:
    """Stored rotated, with EXIF orientation 6 ("rotate 90° clockwise to display")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(255 - digit).copy()).save(path := path.with_suffix(".jpg"), quality=95, exif=exif)
    return path


FORMS: dict[str, Callable[[np.ndarray, Path], Path]] = {
    "grey": _grey,
    "black_on_white": _black_on_white,
    "coloured_rgb": _coloured,
    "rgba_dark_ink": _rgba_dark_ink,
    "la_light_ink": _la_light_ink,
    "16_bit": _sixteen_bit,
    "palette_gif": _palette_gif,
    "upscaled_280": _upscaled,
    "jpeg": _jpeg,
    "off_centre_tiff": _off_centre_photo,
    "exif_rotated": _exif_rotated,
}
EXACT_FORMS = {"grey", "black_on_white", "coloured_rgb", "rgba_dark_ink", "la_light_ink", "16_bit", "palette_gif"}


def _similarity(original: np.ndarray, loaded: np.ndarray) -> float:
    """Correlation with the original, allowing the one-pixel offset that centre-of-mass rounding may add."""
    loaded = loaded.astype(np.float64).ravel()
    best = -1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.roll(original, (dy, dx), axis=(0, 1)).astype(np.float64).ravel()
            best = max(best, float(np.corrcoef(shifted, loaded)[0, 1]))
    return best


@pytest.mark.parametrize("form", FORMS)
def test_forms_come_back_as_the_mnist_digit(form, digits, tmp_path):
    images, _ = digits
    folder = tmp_path / form
    folder.mkdir()
    written = [FORMS[form](digit, folder / f"{index:02d}") for index, digit in enumerate(images)]
    paths, batch = load_images([folder])
    assert paths == sorted(written)
    assert batch.dtype == np.uint8 and batch.shape == (len(images), 1, 28, 28)
    scores = [_similarity(original, loaded[0]) for original, loaded in zip(images, batch, strict=True)]
    if form in EXACT_FORMS:  # a lossless 28×28 copy: the very same pixels
        assert np.mean(scores) > 0.999, scores
    else:
        assert np.mean(scores) > 0.95 and min(scores) > 0.88, scores
    # white digit on black, as MNIST: the border is black and the ink reaches full white
    assert batch[:, :, [0, -1], :].max() == 0 and batch[:, :, :, [0, -1]].max() == 0
    assert (batch.reshape(len(batch), -1).max(axis=1) >= 200).all()


def test_loaded_images_are_classified_like_the_originals(digits, small_model, tmp_path):
    images, labels = digits
    originals = classify(on_numpy(small_model), images[:, None], MNIST_NORMALIZE)
    accuracy = np.mean([label == truth for (label, _), truth in zip(originals, labels, strict=True)])
    assert accuracy >= 0.8, "the fixture model should be a usable MNIST classifier"
    for form in ("black_on_white", "coloured_rgb", "upscaled_280", "jpeg", "off_centre_tiff", "exif_rotated"):
        folder = tmp_path / form
        folder.mkdir()
        for index, digit in enumerate(images):
            FORMS[form](digit, folder / f"{index:02d}")
        _, batch = load_images([folder])
        predictions = classify(on_numpy(small_model), batch, MNIST_NORMALIZE)
        agree = np.mean([a[0] == b[0] for a, b in zip(originals, predictions, strict=True)])
        assert agree >= 0.9, f"{form}: only {agree:.0%} of predictions match those on the original digits"


def test_find_images_keeps_files_and_expands_folders(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    for name in ("b.png", "a.JPG", "c.webp"):
        Image.new("L", (8, 8)).save(folder / name, format="WEBP" if name.endswith("webp") else None)
    (folder / "notes.txt").write_text("not an image")
    (folder / "._b.png").write_bytes(b"resource fork, not an image")
    (folder / "sub").mkdir()
    single = tmp_path / "single.bmp"
    Image.new("L", (8, 8)).save(single)
    assert find_images([single, folder]) == [single, folder / "a.JPG", folder / "b.png", folder / "c.webp"]
    assert find_images(str(single)) == [single]


def _one_line_error(call: Callable[[], object], *fragments: str) -> str:
    with pytest.raises(ImageInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width×height`` pixels (its data is never needed to refuse it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def test_bad_files_raise_one_line_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n")
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(noise)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(noise.read_bytes()[:2000])
    over_limit = tmp_path / "over_limit.png"
    Image.new("1", (8000, 7000)).save(over_limit)  # 56 megapixels, a small file
    bomb = _png_header_only(tmp_path / "bomb.png", 40_000, 40_000)  # 1.6 gigapixels

    _one_line_error(lambda: load_image(tmp_path / "missing.png"), "missing.png", "no such file")
    _one_line_error(lambda: load_image(empty), "empty.png", "empty file")
    _one_line_error(lambda: load_image(text), "notes.png", "not an image")
    _one_line_error(lambda: load_image(truncated), "truncated.png", "cannot decode")
    _one_line_error(lambda: load_image(over_limit), "over_limit.png", "8000×7000", "megapixel")
    _one_line_error(lambda: load_image(bomb), "bomb.png", "megapixel")


# A valid Encapsulated PostScript file: PIL's EPS plugin would hand it to Ghostscript (an interpreter) to decode.
TINY_EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n"
            b"newpath 4 4 moveto 24 24 lineto stroke\nshowpage\n%%EOF\n")


def test_only_image_formats_are_decoded(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    disguised = tmp_path / "digit.png"
    disguised.write_bytes(TINY_EPS)
    with Image.open(disguised) as opened:  # what PIL does with it when not restricted
        assert opened.format == "EPS"
    called = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: called.append(args))
    _one_line_error(lambda: load_image(disguised), "digit.png", "not an image file")
    assert not called


def test_unreadable_files_are_skipped_and_names_escaped(digits, tmp_path):
    images, _ = digits
    hostile = tmp_path / "evil\n\x1b[31mred.png"
    Image.fromarray(images[0]).save(hostile, format="PNG")
    Image.fromarray(images[1]).save(tmp_path / "good.png")
    (tmp_path / "junk.png").write_text("not a picture")
    files, tensors, problems = read_images([tmp_path])
    assert [f.name for f in files] == ["evil\n\x1b[31mred.png", "good.png"] and tensors.shape == (2, 1, 28, 28)
    assert [str(p) for p in problems] == [f"{tmp_path}/junk.png: not an image file (PNG, JPEG, BMP, GIF, TIFF, "
                                          "WEBP, PPM); give a PNG, JPEG or other image"]
    table = format_predictions(files, [(7, 0.9), (2, 0.8)])
    assert "\x1b" not in table and table.count("\n") == 2 and "evil\\n\\x1b[31mred.png" in table
    assert printable("日本語\t.png") == "日本語\\t.png"
    _one_line_error(lambda: load_image(tmp_path / "gone\x1b.png"), "gone\\x1b.png", "no such file")


def test_bad_paths_raise_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    _one_line_error(lambda: find_images([tmp_path / "nowhere"]), "nowhere", "no such file or folder")
    _one_line_error(lambda: find_images([tmp_path / "empty"]), "empty", "no image files")
    _one_line_error(lambda: load_images([tmp_path / "texts"]), "texts", "no image files")
    _one_line_error(lambda: find_images([]), "no images given")


def test_blank_and_tiny_images_do_not_crash(tmp_path):
    for name, pixels in {
        "white": np.full((40, 30), 255, np.uint8),
        "black": np.zeros((28, 28), np.uint8),
        "grey": np.full((5, 5), 128, np.uint8),
        "one_pixel": np.zeros((1, 1), np.uint8),
    }.items():
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
        image = load_image(tmp_path / f"{name}.png")
        assert image.shape == (1, 28, 28) and image.dtype == np.uint8
        assert image.sum() == 0, name


def test_a_small_digit_on_a_large_page_is_found(digits, tmp_path):
    digit = digits[0][0]
    page = np.full((1500, 2000), 230, np.uint8)  # 3 megapixels; the digit covers 0.03% of it
    page[700:728, 1200:1228] = 230 - (digit.astype(np.int32) * 210 // 255)
    Image.fromarray(page).save(tmp_path / "page.png")
    assert _similarity(digit, load_image(tmp_path / "page.png")[0]) > 0.9


def test_to_mnist_scales_the_longer_side_to_20_and_centres_the_mass():
    bar = np.zeros((200, 500), np.float32)  # a wide bar: 100 rows tall, 400 columns wide, off-centre
    bar[10:110, 50:450] = 1.0
    digit = to_mnist(bar)
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    assert cols[-1] - cols[0] + 1 == 20 and rows[-1] - rows[0] + 1 == 5
    mass = digit.astype(np.float64)
    centre = [(mass.sum(axis=1 - axis) * np.arange(28)).sum() / mass.sum() for axis in (0, 1)]
    assert np.allclose(centre, 14.0, atol=0.5)


def test_object_framing_fills_the_frame_as_fashion_mnist_does(tmp_path):
    shoe = np.full((300, 600), 255, np.uint8)  # a dark, wide object on a white photo, off-centre
    shoe[40:190, 100:550] = 40
    Image.fromarray(shoe).save(tmp_path / "shoe.png")
    framed = load_images([tmp_path / "shoe.png"], framing="object")[1][0, 0]
    rows, cols = np.flatnonzero(framed.any(axis=1)), np.flatnonzero(framed.any(axis=0))
    assert (cols[0], cols[-1]) == (0, 27)  # the longer side fills all 28 pixels
    assert rows[-1] - rows[0] + 1 == 9 and rows[0] == (28 - 9) // 2  # 150/450 of it, centred
    as_digit = load_image(tmp_path / "shoe.png")[0]
    assert np.flatnonzero(as_digit.any(axis=0)).size == 20
    with pytest.raises(ValueError, match="unknown framing 'poster'"):
        to_mnist(shoe / 255.0, framing="poster")


@pytest.mark.parametrize("seed", range(4))
def test_resizing_is_torchs_antialiased_bilinear(seed):
    """The numpy resize computes what ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)`` does,
    down and up, for the shapes a digit's box takes: the same weights, the sums within float32 rounding (PyTorch's
    own float32 sums vary by a few units in the last place with the CPU's kernels)."""
    from litquant.images import _resize

    generator = np.random.default_rng(seed)
    for _ in range(60):
        shape = tuple(int(n) for n in generator.integers(1, 400 if seed % 2 else 60, size=2))
        size = (int(generator.integers(1, 29)), int(generator.integers(2, 29)))
        ink = generator.random(shape, dtype=np.float32)
        expected = torch.nn.functional.interpolate(torch.from_numpy(ink)[None, None], size=size, mode="bilinear",
                                                   antialias=True, align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(_resize(ink, size), expected, rtol=0, atol=1e-6, err_msg=f"{shape} -> {size}")


def test_a_one_pixel_wide_stroke_is_resized_as_in_a_wider_image():
    """A column resized alone gives what it gives beside others (PyTorch's kernel, given one column to resize
    in height only, repeats its first output row down the column: a thin ``1`` came out as a flat smear)."""
    from litquant.images import _resize

    column = np.random.default_rng(0).random((86, 1), dtype=np.float32)
    np.testing.assert_array_equal(_resize(column, (22, 1))[:, 0], _resize(np.repeat(column, 3, axis=1), (22, 3))[:, 0])
    bar = np.zeros((100, 40), np.float32)  # a 1-pixel wide vertical stroke, 100 pixels tall
    bar[:, 20] = 1.0
    digit = to_mnist(bar)
    assert np.flatnonzero(digit.any(axis=0)).size == 1 and np.flatnonzero(digit.any(axis=1)).size == 20
    assert len(set(digit[digit > 0].tolist())) == 1  # the same grey all along: a uniform stroke stays uniform


def test_numpy_normalisation_is_the_torch_one():
    images = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    for spec in DATASETS.values():
        np.testing.assert_array_equal(spec.normalize(images),
                                      normalize(torch.from_numpy(images), spec.mean, spec.std).numpy())


def test_classify_batches_restores_training_mode_and_formats(digits, small_model):
    images, _ = digits
    batch = torch.from_numpy(images.copy()).unsqueeze(1)
    small_model.train()
    predictions = classify(on_numpy(small_model), images[:, None], MNIST_NORMALIZE, batch_size=5)
    assert small_model.training
    small_model.eval()
    whole = classify(on_numpy(small_model), images[:, None], MNIST_NORMALIZE)
    assert [label for label, _ in predictions] == [label for label, _ in whole]
    # Batches of 5 and of 24 run the 784-term dot products through differently blocked float32 GEMM kernels
    # (which kernels depends on the CPU): each logit z may differ by the dot product's rounding bound
    # dz <= n * eps * sum|w * x| (n = 784 terms). A softmax probability p moves by at most p * 2 * max dz, plus a
    # few ulps of its own: exp and the sum run in vector lanes or in a scalar tail, depending on the batch size.
    linear = small_model[1]
    with torch.no_grad():
        flat = normalize(batch).flatten(1).abs()
        dz = (784 * torch.finfo(torch.float32).eps * (flat @ linear.weight.abs().T + linear.bias.abs())).amax(1)
    for (_, p5), (_, p24), bound in zip(predictions, whole, dz.tolist(), strict=True):
        assert abs(p5 - p24) <= 2 * p24 * bound + 8 * torch.finfo(torch.float32).eps, (p5, p24, bound)
    assert all(0 <= label <= 9 and 0.1 <= confidence <= 1.0 for label, confidence in predictions)

    paths = [Path(f"digits/{i}.png") for i in range(3)]
    text = format_predictions(paths, predictions[:3])
    lines = text.splitlines()
    assert lines[0].split() == ["file", "label", "confidence"] and len(lines) == 4
    assert lines[1].split() == ["digits/0.png", str(predictions[0][0]), f"{predictions[0][1]:.4f}"]
    named = format_predictions(paths[:1], [(9, 0.5)], classes=[f"class {i}" for i in range(10)])
    assert "class 9" in named and "0.5000" in named
    with pytest.raises(ValueError, match="2 paths but 1 predictions"):
        format_predictions(paths[:2], predictions[:1])
