"""Catalog photos: a product centred on a plain white or light-grey studio background.

This is the *reference* image of one-shot matching — what a shop's product page shows.
The product is scaled to fill about 80 % of a square canvas and gets a soft drop shadow
and a contact shadow, as in a studio packshot.
"""

from __future__ import annotations

import cv2
import numpy as np

CATALOG_SIZE = 400  # pixels, side of the square catalog photo


def catalog_photo(
    product: np.ndarray, *, rng: np.random.Generator, size: int = CATALOG_SIZE
) -> np.ndarray:
    """Place a rendered product on a studio background.

    Args:
        product: ``(h, w, 4)`` uint8 RGBA with straight alpha (``render_product`` output).
        rng: generator for the background tone and the shadow (consumed).
        size: side of the square output, pixels.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    h, w = product.shape[:2]
    scale = 0.8 * size / max(h, w)
    ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgba = cv2.resize(product, (pw, ph), interpolation=interp).astype(np.float32) / 255.0
    alpha = np.clip(rgba[..., 3], 0, 1)
    top, left = (size - ph) // 2, (size - pw) // 2
    level = float(rng.choice([255, 252, 248, 244, 240, 236]))
    falloff = float(rng.uniform(0, 10))
    rows = np.linspace(level, level - falloff, size, dtype=np.float32)
    canvas = np.repeat(rows[:, None, None], size, axis=1).repeat(3, axis=2)
    shadow = np.zeros((size, size), np.float32)
    dx, dy = round(rng.uniform(-0.02, 0.03) * size), round(rng.uniform(0.01, 0.03) * size)
    y0, x0 = top + dy, left + dx
    y1, x1 = min(y0 + ph, size), min(x0 + pw, size)
    shadow[max(y0, 0) : y1, max(x0, 0) : x1] = alpha[max(-y0, 0) : y1 - y0, max(-x0, 0) : x1 - x0]
    sigma = size * float(rng.uniform(0.012, 0.03))
    shadow = cv2.GaussianBlur(shadow, (0, 0), sigma) * float(rng.uniform(0.18, 0.32))
    contact = np.zeros((size, size), np.float32)
    foot = min(top + ph, size - 1)
    cv2.ellipse(
        contact,
        (size // 2, foot),
        (max(2, pw // 2), max(2, size // 60)),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
    )
    contact = cv2.GaussianBlur(contact, (0, 0), size / 80) * 0.35
    canvas *= (1 - np.clip(shadow + contact, 0, 0.6))[..., None]
    roi = canvas[top : top + ph, left : left + pw]
    a = alpha[..., None]
    roi[:] = roi * (1 - a) + rgba[..., :3] * 255.0 * a
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
