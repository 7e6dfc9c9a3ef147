"""Box-format conversions used inside inference.

The public format is ``(x0, y0, x1, y1)``. The original trackers think in other forms —
PySOT/DaSiamRPN in 0-based ``(x, y, w, h)`` and centre/size, siamfc-pytorch in 1-based
``(left, top, w, h)`` and ``(cy, cx)`` — so the conversions live here, named, and nowhere
else.
"""

from __future__ import annotations

import numpy as np

from matcher.images import Box


def xyxy_to_xywh(box: Box) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` -> 0-based ``(x, y, w, h)``."""
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)


def xywh_to_xyxy(box) -> Box:
    """0-based ``(x, y, w, h)`` -> ``(x0, y0, x1, y1)``."""
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(..., 4)`` centre/size boxes -> corner boxes (same dtype)."""
    cx, cy, w, h = np.moveaxis(boxes, -1, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
