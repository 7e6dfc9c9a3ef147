"""Printed text for package artwork: fitted, anti-aliased text masks.

Text is drawn with OpenCV: its built-in TrueType faces (``cv2.FontFace`` "sans" with a
variable weight, "italic", "uni") and the Hershey stroke fonts. A string is rendered once
at a generous reference size, cropped to its ink and resized to fit the target box, so
every font fits a box the same way and small text is anti-aliased by the downscale.
"""

from __future__ import annotations

import cv2
import numpy as np

from trainers.data.synth.designs import RGB, TextStyle

_REFERENCE_SIZE = 72  # pixels: height of the reference rendering
_HERSHEY = {
    "hershey_triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "hershey_complex": cv2.FONT_HERSHEY_COMPLEX,
    "hershey_duplex": cv2.FONT_HERSHEY_DUPLEX,
    "hershey_script": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
}
_faces: dict[str, cv2.FontFace] = {}


def _face(name: str) -> cv2.FontFace:
    if name not in _faces:
        _faces[name] = cv2.FontFace(name)
    return _faces[name]


def text_mask(text: str, style: TextStyle, *, max_height: int, max_width: int) -> np.ndarray:
    """The ink of ``text`` scaled to fit ``max_height x max_width``, aspect kept.

    Args:
        text: the string (printed in capitals when ``style.upper``).
        style: font and weight.
        max_height: box height, pixels.
        max_width: box width, pixels.

    Returns:
        ``(h, w)`` float32 coverage in ``[0, 1]`` with ``h <= max_height``,
        ``w <= max_width``; ``(0, 0)`` when the text is empty or the box too small.
    """
    text = text.upper() if style.upper else text
    if not text.strip() or max_height < 3 or max_width < 3:
        return np.zeros((0, 0), np.float32)
    size = _REFERENCE_SIZE
    pad = size // 2
    canvas = np.zeros((size * 2 + pad, int(len(text) * size * 1.3) + 2 * pad), np.uint8)
    org = (pad, int(size * 1.5))
    if style.font in _HERSHEY:
        thickness = max(1, round(style.weight / 900 * size / 7))
        scale = size / 22.0
        cv2.putText(canvas, text, org, _HERSHEY[style.font], scale, 255, thickness, cv2.LINE_AA)
    else:
        cv2.putText(canvas, text, org, 255, _face(style.font), size, style.weight)
    rows = np.flatnonzero(canvas.max(axis=1))
    cols = np.flatnonzero(canvas.max(axis=0))
    if rows.size == 0:
        return np.zeros((0, 0), np.float32)
    ink = canvas[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = min(max_height / ink.shape[0], max_width / ink.shape[1])
    h, w = max(1, int(ink.shape[0] * scale)), max(1, int(ink.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(ink, (w, h), interpolation=interp).astype(np.float32) / 255.0


def paint(image: np.ndarray, coverage: np.ndarray, colour: RGB, *, top: int, left: int) -> None:
    """Blend ``colour`` into ``image`` in place where ``coverage`` is set.

    Args:
        image: ``(H, W, 3)`` float32 RGB in ``[0, 255]``, modified in place.
        coverage: ``(h, w)`` float32 in ``[0, 1]``; parts outside ``image`` are clipped.
        colour: RGB.
        top: row of ``coverage[0, 0]`` in ``image``.
        left: column of ``coverage[0, 0]`` in ``image``.
    """
    h, w = coverage.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, image.shape[0]), min(left + w, image.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    a = coverage[y0 - top : y1 - top, x0 - left : x1 - left, None]
    roi = image[y0:y1, x0:x1]
    roi *= 1.0 - a
    roi += a * np.asarray(colour, np.float32)


def draw_text(
    image: np.ndarray,
    text: str,
    style: TextStyle,
    box: tuple[int, int, int, int],
    *,
    vertical: bool = False,
    colour: RGB | None = None,
) -> tuple[int, int, int, int] | None:
    """Print ``text`` centred in ``box``, with the style's outline, in place.

    Args:
        image: ``(H, W, 3)`` float32 RGB in ``[0, 255]``, modified in place.
        text: the string.
        style: font, weight, colours.
        box: ``(x0, y0, x1, y1)`` int pixels, the area the text must fit.
        vertical: print bottom-to-top (rotated 90 degrees), as on tubes and narrow bottles.
        colour: ink colour overriding ``style.colour``.

    Returns:
        The ``(x0, y0, x1, y1)`` box of the printed ink, or ``None`` if nothing fitted.
    """
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if vertical:
        bw, bh = bh, bw
    outline = max(1, round(min(bh, 40) * 0.06)) if style.outline is not None else 0
    mask = text_mask(text, style, max_height=bh - 2 * outline, max_width=bw - 2 * outline)
    if mask.size == 0:
        return None
    if vertical:
        mask = np.ascontiguousarray(np.rot90(mask))
    h, w = mask.shape
    top, left = y0 + ((y1 - y0) - h) // 2, x0 + ((x1 - x0) - w) // 2
    if style.outline is not None:
        padded = cv2.copyMakeBorder(mask, outline, outline, outline, outline, cv2.BORDER_CONSTANT)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outline + 1,) * 2)
        paint(
            image, cv2.dilate(padded, kernel), style.outline, top=top - outline, left=left - outline
        )
    paint(image, mask, colour or style.colour, top=top, left=left)
    return left, top, left + w, top + h
