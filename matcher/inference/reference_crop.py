"""The square reference crop of the detection family (Siamese Mask R-CNN).

The reference box, widened by a context margin and clipped to the image, is cut out,
resized so its longer side is ``size`` (the aspect ratio is kept) and centred on a
``size x size`` canvas filled with the ImageNet mean colour, which the network's
normalisation maps to zero (the original's zero padding after mean subtraction). The same
function serves inference (:mod:`matcher.siam_mask_rcnn_matcher`) and training episodes,
so both see references framed alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: ImageNet mean RGB as uint8: the padding colour.
MEAN_RGB = (124, 116, 104)


def context_box(
    box: Sequence[float], image_size: tuple[int, int], *, context: float
) -> tuple[int, int, int, int]:
    """Integer pixel window of ``box`` plus a margin, clipped to the image.

    Args:
        box: ``(x0, y0, x1, y1)`` float pixels.
        image_size: ``(height, width)``.
        context: margin on each side as a fraction of the box's width / height.

    Returns:
        ``(x0, y0, x1, y1)`` ints with ``0 <= x0 < x1 <= width`` (same for y).
    """
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = context * (x1 - x0), context * (y1 - y0)
    left = min(max(int(np.floor(x0 - mx)), 0), width - 1)
    top = min(max(int(np.floor(y0 - my)), 0), height - 1)
    right = max(min(int(np.ceil(x1 + mx)), width), left + 1)
    bottom = max(min(int(np.ceil(y1 + my)), height), top + 1)
    return left, top, right, bottom


def reference_crop(
    image: np.ndarray,
    box: Sequence[float],
    *,
    size: int,
    context: float,
    fill: tuple[int, int, int] = MEAN_RGB,
) -> np.ndarray:
    """Square reference crop.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: ``(x0, y0, x1, y1)`` of the reference object in ``image``.
        size: side of the output.
        context: margin on each side as a fraction of the box's width / height.
        fill: colour of the padding.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    x0, y0, x1, y1 = context_box(box, image.shape[:2], context=context)
    patch = image[y0:y1, x0:x1]
    h, w = patch.shape[:2]
    scale = size / max(h, w)
    new_w = min(size, max(1, round(w * scale)))
    new_h = min(size, max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(patch), (new_w, new_h), interpolation=interp)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = np.asarray(fill, np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized.reshape(new_h, new_w, 3)
    return canvas
