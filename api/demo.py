"""A self-contained demo pair made from scikit-image's sample photos.

The product is the coffee cup of ``skimage.data.coffee()``; the scene is a busy collage of
other sample photos with the cup pasted twice, at two sizes and lightings. It lets
``siammatch demo`` (and ``make serve`` until the service exists) show a real result on a
fresh machine with nothing downloaded.
"""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[:, :, :3])


def demo_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """``(product, scene, true boxes)``; the boxes are ``[x0, y0, x1, y1]`` lists."""
    rng = np.random.default_rng(seed)
    product = _rgb(skimage.data.coffee())[20:260, 170:430].copy()
    height, width = 480, 720
    sources = [_rgb(getattr(skimage.data, n)()) for n in ("rocket", "chelsea", "astronaut")]
    scene = np.zeros((height, width, 3), np.uint8)
    x = 0
    for i in range(3):
        src = sources[i]
        w = width // 3 if i < 2 else width - x
        scene[:, x : x + w] = cv2.resize(src, (w, height), interpolation=cv2.INTER_AREA)
        x += w
    truth = []
    for side, gain in ((150, 1.0), (95, 0.85)):
        ph = int(side * product.shape[0] / product.shape[1])
        for _ in range(100):
            x0 = int(rng.integers(0, width - side))
            y0 = int(rng.integers(0, height - ph))
            box = [x0, y0, x0 + side, y0 + ph]
            if all(_iou(box, b) == 0 for b in truth):
                break
        patch = cv2.resize(product, (side, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
        scene[y0 : y0 + ph, x0 : x0 + side] = np.clip(patch * gain, 0, 255).astype(np.uint8)
        truth.append([float(v) for v in box])
    return product, scene, truth


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
