"""Drawing results over images: boxes, translucent masks, polygons and scores.

Used by the command line (``-o annotated.png``, tracking videos) and the web page.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from matcher.structures import Instance


def palette(index: int) -> tuple[int, int, int]:
    """A distinct, saturated RGB colour per index (golden-angle hues)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (int(r * 255), int(g * 255), int(b * 255))


def draw_instances(
    image: np.ndarray,
    instances: list[Instance] | tuple[Instance, ...],
    *,
    labels: list[str] | None = None,
    mask_alpha: float = 0.45,
    color_offset: int = 0,
) -> np.ndarray:
    """Draw instances over an RGB image and return the annotated copy.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        instances: what to draw, each with its own colour.
        labels: optional text per instance (default: its score).
        mask_alpha: opacity of mask fills.
        color_offset: first palette index (to keep colours stable across frames).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    out = image.astype(np.float32).copy()
    height, width = image.shape[:2]
    thickness = max(2, round(min(height, width) / 250))
    font_scale = max(0.4, min(height, width) / 900)
    for i, inst in enumerate(instances):
        color = np.array(palette(i + color_offset), dtype=np.float32)
        if inst.mask is not None and inst.mask.shape == (height, width):
            m = inst.mask.astype(bool)
            out[m] = out[m] * (1 - mask_alpha) + color * mask_alpha
    canvas = np.clip(out, 0, 255).astype(np.uint8)
    for i, inst in enumerate(instances):
        color = palette(i + color_offset)
        if inst.mask is not None and inst.mask.shape == (height, width):
            contours, _ = cv2.findContours(
                inst.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            cv2.drawContours(canvas, contours, -1, color, max(1, thickness - 1))
        x0, y0, x1, y1 = (round(v) for v in inst.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, thickness)
        if inst.polygon is not None:
            pts = np.round(np.asarray(inst.polygon, dtype=np.float32)).astype(np.int32)
            cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], True, color, max(1, thickness - 1))
        text = labels[i] if labels is not None else f"{inst.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y0 - 4 if y0 - th - base - 4 >= 0 else min(height - 1, y1 + th + 4)
        cv2.rectangle(canvas, (x0, ty - th - base), (x0 + tw + 4, ty + base - 2), color, -1)
        cv2.putText(
            canvas,
            text,
            (x0 + 2, ty - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return canvas
