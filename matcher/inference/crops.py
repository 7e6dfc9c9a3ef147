"""Crops around a position, exactly as each original tracker takes them.

* :func:`subwindow` — PySOT ``get_subwindow`` and DaSiamRPN ``get_subwindow_tracking``:
  an ``original_size`` square around ``center`` (corners snapped with ``corner_round``),
  areas outside the image filled with the channel average truncated to uint8, resized
  with ``cv2.resize`` (bilinear) when the sizes differ.
* :func:`siamfc_crop` — siamfc-pytorch ``crop_and_resize``: corners rounded half-to-even
  in float32, border added with ``cv2.copyMakeBorder`` (value rounded by OpenCV), always
  resized.

All take and return ``HxWx3`` uint8 arrays in whatever channel order the caller uses.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def floor_half(value: float) -> float:
    """PySOT's corner rounding: ``floor(x + 0.5)``."""
    return float(np.floor(value + 0.5))


def py2_round(value: float) -> float:
    """Python 2 ``round``: halves away from zero (DaSiamRPN's convention)."""
    value = float(value)
    return float(np.floor(value + 0.5)) if value >= 0 else -float(np.floor(-value + 0.5))


def subwindow(
    image: np.ndarray,
    center: tuple[float, float] | np.ndarray,
    model_size: int,
    original_size: float,
    fill: np.ndarray,
    *,
    corner_round: Callable[[float], float] = floor_half,
) -> np.ndarray:
    """Square crop of side ``original_size`` centred on ``center``, resized to ``model_size``.

    Args:
        image: ``(H, W, 3)`` uint8.
        center: ``(cx, cy)`` in pixels.
        model_size: output side.
        original_size: side of the crop in the image (an integer value).
        fill: per-channel colour for areas outside the image (truncated to uint8).
        corner_round: snapping of the top-left corner.

    Returns:
        ``(model_size, model_size, 3)`` uint8.
    """
    size = int(original_size)
    c = (original_size + 1) / 2
    xmin = int(corner_round(center[0] - c))
    ymin = int(corner_round(center[1] - c))
    height, width = image.shape[:2]
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmin + size, width), min(ymin + size, height)
    if x0 == xmin and y0 == ymin and x1 == xmin + size and y1 == ymin + size:
        patch = image[ymin : ymin + size, xmin : xmin + size]
    else:
        patch = np.empty((size, size, image.shape[2]), dtype=np.uint8)
        patch[:] = np.asarray(fill, dtype=np.float64).astype(np.uint8)
        if x1 > x0 and y1 > y0:
            patch[y0 - ymin : y1 - ymin, x0 - xmin : x1 - xmin] = image[y0:y1, x0:x1]
    if model_size != original_size:
        patch = cv2.resize(patch, (model_size, model_size))
    return np.ascontiguousarray(patch)


def siamfc_crop(
    image: np.ndarray,
    center_yx: np.ndarray,
    size: float,
    out_size: int,
    border_value: np.ndarray,
) -> np.ndarray:
    """siamfc-pytorch's crop: ``round(size)`` square at ``center_yx``, resized to ``out_size``.

    Args:
        image: ``(H, W, 3)`` uint8.
        center_yx: ``(cy, cx)``; its dtype (float32 in the tracker) sets the rounding
            arithmetic, as in the original.
        size: side in the image.
        out_size: output side.
        border_value: per-channel fill colour, passed to OpenCV as is.

    Returns:
        ``(out_size, out_size, 3)`` uint8.
    """
    side = round(size)
    start = np.round(center_yx - (side - 1) / 2)
    corners = np.round(np.concatenate((start, start + side))).astype(int)
    pads = np.concatenate((-corners[:2], corners[2:] - np.array(image.shape[:2])))
    npad = max(0, int(pads.max()))
    if npad > 0:
        image = cv2.copyMakeBorder(
            image, npad, npad, npad, npad, cv2.BORDER_CONSTANT, value=border_value
        )
    corners = corners + npad
    patch = image[corners[0] : corners[2], corners[1] : corners[3]]
    return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
