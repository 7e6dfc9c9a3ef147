"""Reading images and boxes from what users pass in.

Everything that enters siammatch as an image goes through :func:`load_image`, which
accepts a path, raw bytes, a file object, a PIL image or a numpy array and returns an
``HxWx3`` ``uint8`` RGB array. It applies the EXIF orientation, converts grey, palette,
CMYK, 16-bit and alpha images (alpha is composited over white, the usual product-photo
background), and refuses, from the header and before decoding, images outside an
:class:`ImageLimits`: too many pixels (decompression bombs), a side too long, or an aspect
ratio too extreme. The last two bound what an image can cost downstream, not only its
own decoded size: a match-mode pyramid (:mod:`matcher.inference.pyramid`) resizes the
scene's *shorter* side to a working size, so its levels' area grows with the aspect ratio
(a 2,000,000x1 strip within a 25 MP limit asked for gigabytes), and a strip has nothing
to match anyway. Boxes go through :func:`validate_box`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from matcher.errors import (
    ImageTooLargeError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
)

logger = logging.getLogger(__name__)

#: Default cap on width x height of any decoded image (about 8K x 5K).
DEFAULT_MAX_PIXELS = 40_000_000
#: Default cap on either side of an image, pixels.
DEFAULT_MAX_SIDE = 20_000
#: Default cap on an image's longer side divided by its shorter side.
DEFAULT_MAX_ASPECT = 20.0

ImageLike = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Image.Image | np.ndarray
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageLimits:
    """The images :func:`load_image` accepts, checked from the header before decoding.

    Attributes:
        max_pixels: most ``width * height`` (beyond: :class:`ImageTooLargeError`).
        max_side: longest ``width`` or ``height`` (beyond: :class:`ImageTooLargeError`).
        max_aspect: largest ``longer side / shorter side`` (beyond:
            :class:`ImageTooThinError`); at least 1, ``math.inf`` for none (crops of an
            accepted image, which may be as thin as a box).
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_side: int = DEFAULT_MAX_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        aspect = self.max_aspect
        if (
            isinstance(aspect, bool)
            or not isinstance(aspect, int | float)
            or not aspect >= 1.0  # NaN fails too
        ):
            raise InvalidArgumentError(f"max_aspect must be a number >= 1, got {aspect!r}")

    def check(self, width: int, height: int) -> None:
        """Refuse a ``width x height`` image outside these limits.

        Raises:
            InvalidImageError: no pixels.
            ImageTooLargeError: too many pixels, or a side too long.
            ImageTooThinError: too extreme an aspect ratio.
        """
        if width <= 0 or height <= 0:
            raise InvalidImageError(f"image has no pixels ({width}x{height})")
        if width * height > self.max_pixels:
            raise ImageTooLargeError(
                f"image is {width}x{height} = {width * height} pixels, over the limit of "
                f"{self.max_pixels}"
            )
        if max(width, height) > self.max_side:
            raise ImageTooLargeError(
                f"image is {width}x{height}: a side over the limit of {self.max_side} pixels"
            )
        aspect = max(width, height) / min(width, height)
        if aspect > self.max_aspect:
            raise ImageTooThinError(
                f"image is {width}x{height}: its aspect ratio {aspect:.4g}:1 is over the "
                f"limit of {self.max_aspect:g}:1"
            )


#: The limits :func:`load_image` applies when given none.
DEFAULT_LIMITS = ImageLimits()


def load_image(src: ImageLike | Any, *, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Turn any supported image input into an RGB ``uint8`` array.

    Args:
        src: file path, encoded bytes, binary file object, PIL image, or numpy array
            (``HxW`` grey, ``HxWx1``, ``HxWx3`` RGB or ``HxWx4`` RGBA; ``uint8``,
            ``uint16``, ``bool`` or floats in ``[0, 1]``).
        limits: refuse images outside these (checked before decoding).

    Returns:
        ``(H, W, 3)`` uint8, C-contiguous, RGB.

    Raises:
        InvalidImageError: unreadable, corrupt, empty or of an unsupported kind.
        ImageTooLargeError: more pixels, or a longer side, than ``limits`` allow.
        ImageTooThinError: an aspect ratio beyond ``limits.max_aspect``.
    """
    if isinstance(src, np.ndarray):
        return _from_array(src, limits=limits, what="array")
    if isinstance(src, Image.Image):
        limits.check(src.width, src.height)
        return _from_pil(src, limits=limits)
    if isinstance(src, str | os.PathLike):
        path = os.fspath(src)
        if not os.path.isfile(path):
            raise InvalidImageError(f"image file {path!r} does not exist")
        with open(path, "rb") as fh:
            return _decode(fh, limits=limits, what=path)
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise InvalidImageError("image data is empty")
        return _decode(io.BytesIO(bytes(src)), limits=limits, what="image data")
    if hasattr(src, "read"):
        return _decode(src, limits=limits, what="image stream")
    raise InvalidImageError(f"cannot read an image from a {type(src).__name__}")


def _decode(fh: BinaryIO, *, limits: ImageLimits, what: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(fh)
            limits.check(pil.width, pil.height)
            pil.load()
    except Image.DecompressionBombError as exc:
        # PIL refuses, from the header, images over twice its own global limit: report
        # ours, which is lower.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({found.group(1)} pixels)" if found else ""
        raise ImageTooLargeError(
            f"{what} is too large{size}: over the limit of {limits.max_pixels} pixels"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{what} is not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, InvalidImageError):
            raise
        raise InvalidImageError(f"{what} is corrupt or truncated ({exc})") from None
    return _from_pil(pil, limits=limits)


def _from_pil(pil: Image.Image, *, limits: ImageLimits) -> np.ndarray:
    try:
        pil = ImageOps.exif_transpose(pil)
    except Exception as exc:  # a broken EXIF block must not make the image unreadable
        logger.warning("ignoring unreadable EXIF orientation: %s", exc)
    mode = pil.mode
    if mode.startswith("I;16"):
        arr16 = np.asarray(pil).astype(np.uint16)
        return _from_array(arr16, limits=limits, what=f"{mode} image")
    if mode in ("I", "F"):
        arr = np.asarray(pil)
        if mode == "F":  # 32-bit float images: scale their own range to 0..255
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return _from_array(arr, limits=limits, what=f"{mode} image")
    if mode == "P" and "transparency" in pil.info:
        pil = pil.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(pil.convert("RGBA"))
        return _composite_over_white(rgba)
    if mode != "RGB":
        pil = pil.convert("RGB")
    return np.ascontiguousarray(np.asarray(pil, dtype=np.uint8))


def _from_array(arr: np.ndarray, *, limits: ImageLimits, what: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InvalidImageError(
            f"{what} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {tuple(arr.shape)}"
        )
    limits.check(arr.shape[1], arr.shape[0])
    arr = _to_uint8(arr, what)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = _composite_over_white(arr)
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        # Wider integer arrays are 8-bit data when they fit in 0..255, 16-bit otherwise.
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise InvalidImageError(f"{what} has integer values outside 0..65535")
        if hi <= 255:
            return arr.astype(np.uint8)
        return np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InvalidImageError(f"{what} contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidImageError(
                f"{what}: float images must hold values in [0, 1], got [{lo:g}, {hi:g}]"
            )
        return np.round(arr * 255.0).astype(np.uint8)
    raise InvalidImageError(f"{what} has unsupported dtype {arr.dtype}")


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32)
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.round(out).astype(np.uint8)


# --------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------


def parse_box(text: str) -> Box:
    """Parse ``"x0,y0,x1,y1"`` into a float box (no image check).

    Raises:
        InvalidBoxError: not four comma-separated finite numbers.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise InvalidBoxError(f"box {text!r} must be four numbers x0,y0,x1,y1")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidBoxError(f"box {text!r} must be four numbers x0,y0,x1,y1") from None
    return _finite_box(values, text)


def _finite_box(values: Sequence[float], shown: object) -> Box:
    if not all(math.isfinite(v) for v in values):
        raise InvalidBoxError(f"box {shown!r} has non-finite coordinates")
    x0, y0, x1, y1 = (float(v) for v in values)
    return (x0, y0, x1, y1)


def validate_box(
    box: Sequence[float] | np.ndarray,
    image_size: tuple[int, int],
    *,
    name: str = "box",
    tolerance: float = 1.0,
    min_side: float = 1.0,
) -> Box:
    """Check a box against its image and return it clipped to the image.

    Args:
        box: ``(x0, y0, x1, y1)`` pixel coordinates.
        image_size: ``(height, width)`` of the image the box refers to.
        name: what the box is, for messages.
        tolerance: how far (pixels) a corner may lie outside the image before the box is
            refused; within it the box is clipped.
        min_side: smallest accepted width and height after clipping.

    Returns:
        The clipped box as a float tuple.

    Raises:
        InvalidBoxError: wrong length, non-finite, inverted, degenerate or outside.
    """
    try:
        values = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise InvalidBoxError(f"{name} must be four numbers x0,y0,x1,y1, got {box!r}") from None
    if len(values) != 4:
        raise InvalidBoxError(f"{name} must be four numbers x0,y0,x1,y1, got {len(values)}")
    x0, y0, x1, y1 = _finite_box(values, box)
    height, width = image_size
    if x1 <= x0 or y1 <= y0:
        raise InvalidBoxError(
            f"{name} ({x0:g},{y0:g},{x1:g},{y1:g}) has zero or negative area "
            "(expected x0 < x1 and y0 < y1)"
        )
    if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
        raise InvalidBoxError(
            f"{name} ({x0:g},{y0:g},{x1:g},{y1:g}) lies outside the {width}x{height} image"
        )
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise InvalidBoxError(
            f"{name} ({x0:g},{y0:g},{x1:g},{y1:g}) is smaller than {min_side:g} px"
        )
    return (x0, y0, x1, y1)


def box_crop(image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, tuple[int, int]]:
    """The whole pixels covered by ``box`` (at least one), and the crop's top-left corner.

    Args:
        image: ``(H, W, C)`` array.
        box: ``(x0, y0, x1, y1)`` inside the image.

    Returns:
        ``(crop, (x, y))`` with ``crop`` a view of ``image``.
    """
    height, width = image.shape[:2]
    x0 = min(max(math.floor(box[0]), 0), width - 1)
    y0 = min(max(math.floor(box[1]), 0), height - 1)
    x1 = min(max(math.ceil(box[2]), x0 + 1), width)
    y1 = min(max(math.ceil(box[3]), y0 + 1), height)
    return image[y0:y1, x0:x1], (x0, y0)
