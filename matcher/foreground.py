"""Where the product is in a product photo on a plain background.

Catalog photos are mostly shot on a plain (white, grey) background. The background colour
is the median of the image's border; when it is plain, the product is what differs from
it: :func:`foreground_box` gives the reference box when a user gives none, and
:func:`foreground_mask` the product's silhouette inside a box (the classical baselines'
masks).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from matcher.images import Box, box_crop


def plain_background(image: np.ndarray, *, tolerance: int, border: int) -> np.ndarray | None:
    """The background colour of a photo on a plain background, or ``None`` when it has none.

    The colour is the median of the image's border strips (``border`` pixels wide); the
    background counts as plain when at least 90 % of the border lies within ``tolerance``
    of it (max over channels). Images too small for the strips have none.

    Returns:
        ``(3,)`` float64 colour, or ``None``.
    """
    height, width = image.shape[:2]
    if height <= 4 * border or width <= 4 * border:
        return None
    strips = np.concatenate(
        [
            image[:border].reshape(-1, 3),
            image[-border:].reshape(-1, 3),
            image[:, :border].reshape(-1, 3),
            image[:, -border:].reshape(-1, 3),
        ]
    ).astype(np.int16)
    background = np.median(strips, axis=0)
    if np.mean(np.abs(strips - background).max(axis=1) <= tolerance) < 0.9:
        return None
    return background


def foreground_box(image: np.ndarray, *, tolerance: int = 24, border: int = 2) -> Box:
    """Box of the foreground of a product photo on a plain background.

    The background colour is the median of the image border. When at least 90 % of the
    border is within ``tolerance`` of it, the box covers every pixel that differs from it
    by more than ``tolerance`` (max over channels); otherwise, or when nothing differs, it
    is the whole image.

    Args:
        image: ``(H, W, 3)`` uint8.
        tolerance: colour distance separating product from background.
        border: width of the border strip that samples the background.

    Returns:
        ``(x0, y0, x1, y1)``.
    """
    height, width = image.shape[:2]
    whole: Box = (0.0, 0.0, float(width), float(height))
    background = plain_background(image, tolerance=tolerance, border=border)
    if background is None:
        return whole
    diff = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=2) > tolerance
    ys, xs = np.nonzero(diff)
    if len(xs) == 0:
        return whole
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    if (x1 - x0) < 2 or (y1 - y0) < 2:
        return whole
    return (float(x0), float(y0), float(x1), float(y1))


def foreground_mask(
    image: np.ndarray, box: Sequence[float], *, tolerance: int = 24, border: int = 2
) -> np.ndarray:
    """The product's silhouette inside its box, when the photo has a plain background.

    The background colour is the median of the image border (as in
    :func:`foreground_box`). When at least 90 % of the border lies
    within ``tolerance`` of it, the silhouette is every pixel of the box crop that differs
    from it by more than ``tolerance``, with holes filled (white labels on a package stay
    inside). Otherwise, or when the silhouette would cover less than a fifth of the box,
    the whole box is foreground.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: the product's box in ``image``.
        tolerance: colour distance separating product and background.
        border: width of the border strip sampling the background.

    Returns:
        ``(h, w)`` bool, the shape of :func:`~matcher.images.box_crop`'s crop.
    """
    crop, _ = box_crop(image, box)
    full = np.ones(crop.shape[:2], bool)
    background = plain_background(image, tolerance=tolerance, border=border)
    if background is None:
        return full
    differs = np.abs(crop.astype(np.int16) - background.astype(np.int16)).max(axis=2) > tolerance
    contours, _ = cv2.findContours(
        differs.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    filled = np.zeros(crop.shape[:2], np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    mask = filled.astype(bool)
    if mask.mean() < 0.2:
        return full
    return mask
