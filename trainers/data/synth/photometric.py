"""Camera and lighting effects applied to a composed scene.

Lighting (global brightness/contrast, a colour cast, and a gradient or vignette of
illumination), blur (Gaussian defocus or linear motion blur) and sensor noise (luminance
plus weaker chroma noise). JPEG compression is applied when the scene is written, at a
quality drawn per scene. All functions take float32 RGB in ``[0, 255]`` and draw only
from the ``rng`` they are given.
"""

from __future__ import annotations

import cv2
import numpy as np


def relight(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, colour cast and uneven illumination.

    Args:
        img: ``(H, W, 3)`` float32 RGB in ``[0, 255]``; not modified.
        rng: generator (consumed).

    Returns:
        A new ``(H, W, 3)`` float32 image (not clipped).
    """
    h, w = img.shape[:2]
    gain = rng.uniform(0.75, 1.2)
    contrast = rng.uniform(0.75, 1.2)
    cast = 1.0 + rng.normal(0.0, 0.04, 3).astype(np.float32)
    mean = float(img.mean())
    out = (img - mean) * np.float32(contrast) + np.float32(mean)
    out *= (np.float32(gain) * cast).astype(np.float32)
    mode = rng.choice(["none", "gradient", "vignette"], p=[0.3, 0.45, 0.25])
    if mode == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        lo, hi = rng.uniform(0.55, 0.95), rng.uniform(1.0, 1.25)
        ys = np.linspace(-0.5, 0.5, h, dtype=np.float32) * np.float32(np.sin(angle))
        xs = np.linspace(-0.5, 0.5, w, dtype=np.float32) * np.float32(np.cos(angle))
        t = np.add.outer(ys, xs) + 0.5
        out *= (lo + (hi - lo) * t)[..., None].astype(np.float32)
    elif mode == "vignette":
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        ys = ((np.arange(h, dtype=np.float32) - cy) / h) ** 2
        xs = ((np.arange(w, dtype=np.float32) - cx) / w) ** 2
        strength = np.float32(rng.uniform(0.4, 1.2))
        out *= np.clip(1.0 - strength * np.add.outer(ys, xs), 0.3, 1.0)[..., None]
    return out


def blur(img: np.ndarray, rng: np.random.Generator, *, p_defocus: float, p_motion: float):
    """Gaussian (defocus) blur with probability ``p_defocus``, else motion blur with
    probability ``p_motion``, else nothing.

    Args:
        img: ``(H, W, 3)`` float32 RGB; not modified.
        rng: generator (consumed).
        p_defocus: probability of a Gaussian blur (sigma 0.6-2.0 px).
        p_motion: probability of a linear motion blur (5-13 px, any direction).

    Returns:
        ``(H, W, 3)`` float32, the input itself when no blur was drawn.
    """
    u = rng.random()
    if u < p_defocus:
        return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 2.0)))
    if u < p_defocus + p_motion:
        length = int(rng.integers(5, 14))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        kernel /= max(float(kernel.sum()), 1e-6)
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return img


def sensor_noise(img: np.ndarray, rng: np.random.Generator, *, sigma: float) -> np.ndarray:
    """Add per-pixel luminance noise and blotchy (low-resolution) chroma noise.

    The luminance noise is the difference of two uniform variables scaled to standard
    deviation ``sigma`` (a triangular, near-Gaussian distribution, five times cheaper to
    draw than normal variates); the chroma noise is Gaussian at a quarter of the
    resolution, upsampled, with standard deviation ``sigma / 2``.

    Args:
        img: ``(H, W, 3)`` float32 RGB; modified in place and returned.
        rng: generator (consumed).
        sigma: luminance noise standard deviation, in 8-bit levels.

    Returns:
        ``img``.
    """
    if sigma <= 0:
        return img
    h, w = img.shape[:2]
    luma = rng.random((h, w), dtype=np.float32)
    luma -= rng.random((h, w), dtype=np.float32)
    luma *= np.float32(sigma * np.sqrt(6.0))
    chroma = rng.standard_normal((h // 4 + 1, w // 4 + 1, 3), dtype=np.float32)
    chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    chroma *= np.float32(sigma * 0.5)
    chroma += luma[..., None]
    img += chroma
    return img
