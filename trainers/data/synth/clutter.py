"""Clutter: everyday things that lie around products or cover parts of them.

:func:`clutter_item` draws one item on a square canvas with an alpha channel: a blob
(a random smooth polygon: a bag, a fruit, a hand-sized object), a stick (pen, cable,
handle), a tag (price label, sticker), a disc (plate, lid, coin) or a flyer (a rotated
photo print). Scenes use them as background clutter under the products and as
occluders on top of them; occluders erase the covered pixels from the visible masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from trainers.data.synth.artwork import fractal_noise, sample_photo
from trainers.data.synth.backgrounds import COLOUR_PHOTOS
from trainers.data.synth.designs import hsv

KINDS = ("blob", "stick", "tag", "disc", "flyer")


def clutter_item(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One clutter item.

    Args:
        rng: generator (consumed).
        size: side of the square canvas, pixels (``>= 8``).

    Returns:
        ``(rgb, alpha)``: ``(size, size, 3)`` float32 RGB in ``[0, 255]`` and
        ``(size, size)`` float32 alpha in ``[0, 1]``.
    """
    s = max(8, int(size))
    kind = str(rng.choice(KINDS, p=[0.35, 0.2, 0.15, 0.15, 0.15]))
    mask = np.zeros((s, s), np.uint8)
    c = s / 2
    colour = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0, 0.9), rng.uniform(0.2, 0.95)))
    rgb = np.empty((s, s, 3), np.float32)
    rgb[:] = colour
    if kind == "blob":
        n = int(rng.integers(7, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = c * rng.uniform(0.55, 0.95, n)
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), s / 40 + 0.5)
        mask = np.where(mask > 127, 255, mask * 2).astype(np.uint8)
        rgb *= (0.75 + 0.5 * fractal_noise(rng, s, s, octaves=3))[..., None]
    elif kind == "stick":
        angle = rng.uniform(0, np.pi)
        d = np.array([np.cos(angle), np.sin(angle)]) * c * 0.95
        p0, p1 = np.round(c - d).astype(int), np.round(c + d).astype(int)
        thick = max(2, int(s * rng.uniform(0.06, 0.16)))
        cv2.line(
            mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 255, thick, cv2.LINE_AA
        )
    elif kind == "tag":
        w, h = s * rng.uniform(0.5, 0.9), s * rng.uniform(0.25, 0.45)
        paper = np.empty((s, s, 3), np.uint8)
        paper[:] = (250, 250, 245) if rng.random() < 0.6 else (250, 205, 60)
        price = f"{rng.integers(0, 50)}.{rng.integers(0, 100):02d}"
        scale = h * 0.45 / 22
        cv2.putText(
            paper,
            price,
            (int(c - w * 0.38), int(c + h * 0.12)),
            cv2.FONT_HERSHEY_DUPLEX,
            scale,
            (30, 30, 30),
            max(1, round(scale * 2)),
            cv2.LINE_AA,
        )
        y = int(c + h * 0.3)
        cv2.line(
            paper,
            (int(c - w * 0.38), y),
            (int(c + w * rng.uniform(-0.1, 0.3)), y),
            (110, 110, 110),
            max(1, int(h / 14)),
        )
        cv2.rectangle(
            mask, (int(c - w / 2), int(c - h / 2)), (int(c + w / 2), int(c + h / 2)), 255, -1
        )
        rot = cv2.getRotationMatrix2D((c, c), float(rng.uniform(-40, 40)), 1.0)
        rgb = cv2.warpAffine(paper, rot, (s, s), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        mask = cv2.warpAffine(mask, rot, (s, s), flags=cv2.INTER_LINEAR)
    elif kind == "disc":
        axes = (int(c * 0.95), int(c * rng.uniform(0.5, 0.95)))
        cv2.ellipse(
            mask, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA
        )
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        rim = np.clip(1 - np.hypot(xx - c, yy - c) / c, 0, 1)
        rgb *= (0.8 + 0.35 * rim)[..., None]
    else:
        photo = sample_photo(str(rng.choice(COLOUR_PHOTOS)))
        ph, pw = photo.shape[:2]
        side = int(min(ph, pw) * rng.uniform(0.3, 0.8))
        y0, x0 = int(rng.integers(0, ph - side + 1)), int(rng.integers(0, pw - side + 1))
        rgb = cv2.resize(photo[y0 : y0 + side, x0 : x0 + side], (s, s)).astype(np.float32)
        w, h = s * rng.uniform(0.55, 0.85), s * rng.uniform(0.55, 0.85)
        box = cv2.boxPoints(((c, c), (w, h), float(rng.uniform(-60, 60))))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 255, cv2.LINE_AA)
    return np.clip(rgb, 0, 255), mask.astype(np.float32) / 255.0
