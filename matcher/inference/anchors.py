"""Anchors and windows of the RPN trackers, and the size-change penalty.

Anchor shapes follow PySOT/DaSiamRPN: for each ratio ``r`` the base side is
``ws = int(sqrt(stride**2 / r))``, ``hs = int(ws * r)``, times each scale — for stride 8,
ratios ``(0.33, 0.5, 1, 2, 3)`` and scale 8: (104, 32), (88, 40), (64, 64), (40, 80),
(32, 96). Candidates are ordered anchor-major: index ``a * S * S + y * S + x``.
"""

from __future__ import annotations

import math

import numpy as np


def anchor_shapes(stride: int, ratios: tuple[float, ...], scales: tuple[float, ...]) -> np.ndarray:
    """``(A, 2)`` float32 anchor ``(w, h)``, ratio-major then scale."""
    shapes = []
    for ratio in ratios:
        ws = int(math.sqrt(stride * stride / ratio))
        hs = int(ws * ratio)
        for scale in scales:
            shapes.append((ws * scale, hs * scale))
    return np.asarray(shapes, dtype=np.float32)


def tracker_anchors(score_size: int, stride: int, shapes: np.ndarray) -> np.ndarray:
    """Anchors of a tracker's score map, centred on the search crop's centre.

    Cell ``(y, x)`` is at ``(-(S // 2) * stride + stride * x, ... y)`` relative to the crop
    centre.

    Returns:
        ``(A * S * S, 4)`` float32 ``(cx, cy, w, h)``, anchor-major.
    """
    origin = -(score_size // 2) * stride
    coords = origin + stride * np.arange(score_size, dtype=np.float32)
    xx, yy = np.meshgrid(coords, coords)
    num = len(shapes)
    out = np.empty((num, score_size * score_size, 4), dtype=np.float32)
    out[:, :, 0] = xx.reshape(1, -1)
    out[:, :, 1] = yy.reshape(1, -1)
    out[:, :, 2] = shapes[:, 0:1]
    out[:, :, 3] = shapes[:, 1:2]
    return out.reshape(-1, 4)


def cosine_window(score_size: int, num_anchors: int = 1) -> np.ndarray:
    """Outer product of Hanning windows, flattened and tiled per anchor (float64)."""
    hanning = np.hanning(score_size)
    return np.tile(np.outer(hanning, hanning).ravel(), num_anchors)


def change(ratio: np.ndarray) -> np.ndarray:
    """``max(r, 1 / r)``."""
    return np.maximum(ratio, 1.0 / ratio)


def padded_size(w, h):
    """SiamRPN's size measure ``sqrt((w + p)(h + p))`` with ``p = (w + h) / 2``."""
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def size_ratio_penalty(
    pred_w: np.ndarray,
    pred_h: np.ndarray,
    ref_w: float,
    ref_h: float,
    penalty_k: float,
) -> np.ndarray:
    """``exp(-(r_c * s_c - 1) * k)``: penalise change of size and aspect ratio.

    Args:
        pred_w / pred_h: candidate sizes.
        ref_w / ref_h: expected size in the same units.
        penalty_k: strength.
    """
    s_c = change(padded_size(pred_w, pred_h) / padded_size(ref_w, ref_h))
    r_c = change((ref_w / ref_h) / (pred_w / pred_h))
    return np.exp(-(r_c * s_c - 1) * penalty_k)


def decode_deltas(loc: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Apply ``(dx, dy, dw, dh)`` to ``(cx, cy, w, h)`` anchors.

    Args:
        loc: ``(4, N)`` deltas (float32 in the trackers).
        anchors: ``(N, 4)``.

    Returns:
        ``(4, N)`` ``(cx, cy, w, h)``.
    """
    out = np.empty_like(loc)
    out[0] = loc[0] * anchors[:, 2] + anchors[:, 0]
    out[1] = loc[1] * anchors[:, 3] + anchors[:, 1]
    out[2] = np.exp(loc[2]) * anchors[:, 2]
    out[3] = np.exp(loc[3]) * anchors[:, 3]
    return out
