"""Image and box inputs: every accepted form, every refusal with a clear error."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

import matcher
from matcher.errors import (
    ImageTooLargeError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
)
from matcher.foreground import foreground_box
from matcher.images import ImageLimits, load_image, parse_box, validate_box
from tests.helpers import png_header


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def test_path_pil_numpy_and_bytes_agree(rgb, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    with open(path, "rb") as stream:
        for src in (path, str(path), Image.fromarray(rgb), rgb, path.read_bytes(), stream):
            out = load_image(src)
            assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
            assert np.array_equal(out, rgb)


def test_exif_orientation_is_applied():
    # Smooth, asymmetric content that JPEG keeps: a horizontal red ramp, a vertical green
    # ramp and a blue block in the top-left corner.
    ys, xs = np.mgrid[0:20, 0:30]
    stored = np.dstack([xs * 8, ys * 12, np.where((ys < 6) & (xs < 8), 255, 0)])
    stored = stored.astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise
    data = _png(Image.fromarray(stored), format="JPEG", exif=exif.tobytes(), quality=100,
                subsampling=0)  # fmt: skip
    out = load_image(data)
    assert out.shape == (30, 20, 3)
    # Turned clockwise, the stored top-left corner lands at the displayed top-right, and
    # the stored left column, read bottom to top, becomes the displayed top row.
    expected = np.rot90(stored, k=-1)
    error = np.abs(out.astype(int) - expected).mean()
    assert error < 3.0, error
    assert out[:6, -6:, 2].mean() > 200 and out[-6:, :6, 2].mean() < 50  # the blue corner
    for wrong in (np.rot90(stored, k=1), stored.transpose(1, 0, 2), np.rot90(stored, k=-1)[::-1]):
        assert np.abs(out.astype(int) - wrong).mean() > 10 * error + 20


def test_grey_rgba_palette_and_16_bit(rgb):
    grey = load_image(Image.fromarray(rgb[:, :, 0]))
    assert grey.shape == (20, 30, 3) and np.array_equal(grey[:, :, 1], rgb[:, :, 0])
    rgba = np.dstack([rgb, np.zeros((20, 30), np.uint8)])  # fully transparent
    assert (load_image(rgba) == 255).all()  # composited over white
    assert load_image(Image.fromarray(rgb).convert("P")).shape == (20, 30, 3)
    sixteen = rgb[:, :, 0].astype(np.uint16) * 257
    png16 = _png(Image.fromarray(sixteen))
    out = load_image(png16)
    assert np.abs(out[:, :, 0].astype(int) - rgb[:, :, 0]).max() <= 1
    assert np.array_equal(load_image(sixteen)[:, :, 2], rgb[:, :, 0])
    assert load_image(rgb.astype(np.float32) / 255.0).dtype == np.uint8
    assert np.array_equal(load_image(rgb.astype(np.int64)), rgb)


def test_decompression_bomb_is_refused_before_decoding():
    big = _png(Image.new("L", (3000, 3000)))
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        load_image(big, limits=ImageLimits(max_pixels=1_000_000))
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((2000, 2000, 3), np.uint8), limits=ImageLimits(max_pixels=1_000_000))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"not an image at all", "not a recognised image"),
        (None, "cannot read"),
    ],
)
def test_unreadable_inputs(data, message):
    with pytest.raises(InvalidImageError, match=message):
        load_image(data)


def test_truncated_and_missing_files(rgb, tmp_path):
    data = _png(Image.fromarray(rgb), format="JPEG")
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match="does not exist"):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (np.full((4, 4, 3), 2.0), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), np.complex64), "dtype"),
    ],
)
def test_bad_arrays(arr, message):
    with pytest.raises(InvalidImageError, match=message):
        load_image(arr)


def test_validate_box():
    assert validate_box((1, 2, 10, 12), (20, 30)) == (1.0, 2.0, 10.0, 12.0)
    assert validate_box((-0.5, 0, 30.5, 20), (20, 30)) == (0.0, 0.0, 30.0, 20.0)
    for box, message in [
        ((5, 5, 5, 9), "zero or negative area"),
        ((5, 9, 9, 4), "zero or negative area"),
        ((0, 0, 40, 10), "outside"),
        ((-20, 0, 5, 10), "outside"),
        ((0, 0, 1), "four numbers"),
        ((0, 0, float("nan"), 3), "non-finite"),
        ((0, 0, 0.5, 0.5), "smaller than"),
    ]:
        with pytest.raises(InvalidBoxError, match=message):
            validate_box(box, (20, 30))


def test_parse_box():
    assert parse_box(" 1, 2,3 ,4.5") == (1.0, 2.0, 3.0, 4.5)
    for text in ("1,2,3", "a,b,c,d", "1,2,3,inf"):
        with pytest.raises(InvalidBoxError):
            parse_box(text)


def test_reference_without_box_finds_the_product_on_a_plain_background():
    img = np.full((100, 120, 3), 250, np.uint8)
    img[20:70, 30:90] = np.random.default_rng(0).integers(0, 200, (50, 60, 3))
    ref = matcher.Reference.from_image(img)
    assert ref.box == (30.0, 20.0, 90.0, 70.0)
    busy = np.random.default_rng(1).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    assert foreground_box(busy) == (0.0, 0.0, 40.0, 50.0)


@pytest.mark.parametrize(
    "width, height, error, words",
    [
        (5000, 1, ImageTooThinError, "5000x1: its aspect ratio 5000:1 is over the limit of 20:1"),
        (1, 300, ImageTooThinError, "300:1"),
        (2_000_000, 1, ImageTooLargeError, "a side over the limit of 20000 pixels"),
        (1, 24_000_000, ImageTooLargeError, "a side over the limit"),
        (30_000, 1_200, ImageTooLargeError, "a side over the limit"),
        (9000, 9000, ImageTooLargeError, "over the limit of 40000000"),
    ],
)
def test_thin_and_long_images_are_refused_from_their_header(width, height, error, words):
    # Header-only files: a decoder that went further would fail with "truncated" instead.
    with pytest.raises(error, match=words):
        load_image(png_header(width, height))


def test_limits_apply_to_arrays_and_pil_images_and_references():
    strip = np.zeros((1, 400, 3), np.uint8)
    for source in (strip, Image.fromarray(strip)):
        with pytest.raises(ImageTooThinError):
            load_image(source)
        with pytest.raises(ImageTooThinError):
            matcher.Reference.from_image(source)
    assert load_image(np.zeros((10, 200, 3), np.uint8)).shape == (10, 200, 3)  # 20:1 passes
    loose = ImageLimits(max_aspect=math.inf)
    assert load_image(strip, limits=loose).shape == (1, 400, 3)
    tight = ImageLimits(max_pixels=10_000, max_side=150, max_aspect=2.0)
    with pytest.raises(ImageTooLargeError, match="150 pixels"):
        load_image(np.zeros((10, 151, 3), np.uint8), limits=tight)
    with pytest.raises(ImageTooThinError, match="limit of 2:1"):
        matcher.Reference.from_image(np.zeros((30, 70, 3), np.uint8), limits=tight)
    for bad in (
        {"max_pixels": 0},
        {"max_side": 1.5},
        {"max_aspect": 0.5},
        {"max_aspect": math.nan},
    ):
        with pytest.raises(InvalidArgumentError):
            ImageLimits(**bad)


def test_decompression_bomb_message_quotes_the_limit_in_force():
    bomb = png_header(20_000, 10_000)  # 200 M pixels: PIL itself refuses it when opening
    with pytest.raises(ImageTooLargeError) as caught:
        load_image(bomb, limits=ImageLimits(max_pixels=25_000_000))
    message = str(caught.value)
    assert "200000000 pixels" in message and "limit of 25000000 pixels" in message
    assert "178956970" not in message  # PIL's own limit
