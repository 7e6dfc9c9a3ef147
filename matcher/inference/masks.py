"""Mask geometry shared by SiamMask's tracking and match modes.

A mask predicted at score cell ``(row, col)`` of a search crop covers the exemplar-sized
window of that cell: in crop pixels ``[(col - base/2) * stride, ... + exemplar]`` (and the
same for rows), where ``base`` is the recipe's ``base_size``. Scaled by the crop's side
over ``instance_size`` and shifted by the crop's corner, this gives the window in image
pixels; the mask is warped there with PySOT's mapping (``cv2.warpAffine``, bilinear,
zero outside). Thresholding and the rotated rectangle around the largest contour follow
SiamMask's tracker.
"""

from __future__ import annotations

import cv2
import numpy as np


def cell_window(
    crop_box: tuple[float, float, float],
    row: int,
    col: int,
    *,
    instance_size: int,
    exemplar_size: int,
    stride: int,
    base_size: int,
) -> tuple[float, float, float]:
    """Image-pixel square ``(x0, y0, side)`` covered by the mask of a score cell.

    Args:
        crop_box: ``(x0, y0, side)`` of the search crop in the image.
        row / col: the score cell.
        instance_size / exemplar_size / stride / base_size: network geometry.
    """
    x0, y0, side = crop_box
    s = side / instance_size
    return (
        x0 + (col - base_size / 2) * stride * s,
        y0 + (row - base_size / 2) * stride * s,
        s * exemplar_size,
    )


def paste_mask(
    mask: np.ndarray, window: tuple[float, float, float], image_size: tuple[int, int]
) -> np.ndarray:
    """Warp an ``MxM`` mask (probabilities) onto its image window.

    Args:
        mask: ``(M, M)`` float32 in ``[0, 1]``.
        window: ``(x0, y0, side)`` in image pixels.
        image_size: ``(height, width)``.

    Returns:
        ``(height, width)`` float32, zero outside the window.
    """
    height, width = image_size
    out = mask.shape[0]
    s = out / window[2]
    back = (-window[0] * s, -window[1] * s, width * s, height * s)
    a = (width - 1) / back[2]
    b = (height - 1) / back[3]
    mapping = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]], dtype=np.float64)
    return cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32),
        mapping,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
