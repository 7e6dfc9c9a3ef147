"""Tracker-style training crops: the square context window, its jitter, and one affine warp.

The geometry is PySOT's / SiamMask's. Around an object box of size ``(w, h)`` the
template window is a square of side ``s_z = sqrt((w + p)(h + p))`` with
``p = context_amount * (w + h)``. It is resized to the exemplar side ``Z``. The search
window around the same (or another) object is ``s_x = s_z * X / Z``, resized to the
search side ``X``, so the object appears at the template's scale. Jitter moves the
window so that the object lands up to ``shift`` output pixels off the centre, and scales
it by ``1 + U(-1, 1) * scale`` independently per axis (PySOT ``Augmentation._shift_scale_aug``),
which also perturbs the aspect ratio a little.

Every crop is one ``2x3`` affine matrix ``M`` in *continuous* pixel coordinates (pixel
``i`` covers ``[i, i + 1)``; boxes are ``(x0, y0, x1, y1)`` float pixels on that grid):
``u = M @ (x, y, 1)``. :func:`warp_image` and :func:`warp_mask` convert it once to
OpenCV's pixel-centre convention, so image, mask and box (:func:`warp_box`) stay aligned
to a fraction of a pixel. Areas outside the image are filled with a given colour (the
image's mean, as the trackers do) and with 0 in masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Jitter:
    """Random crop-window jitter of one crop.

    Attributes:
        shift: largest offset of the object centre from the crop centre, per axis, in crop
            pixels.
        scale: largest relative change of the window side, per axis (``1 + U(-1, 1) *
            scale``; below 1).
    """

    shift: float = 0.0
    scale: float = 0.0


def context_side(box: np.ndarray, context_amount: float) -> float:
    """Side of the template context square around a box.

    Args:
        box: ``(4,)`` float, ``(x0, y0, x1, y1)`` pixels.
        context_amount: context added on each side, as a fraction of ``w + h``.

    Returns:
        ``s_z = sqrt((w + p) * (h + p))`` with ``p = context_amount * (w + h)``.
    """
    w = float(box[2] - box[0])
    h = float(box[3] - box[1])
    p = context_amount * (w + h)
    return math.sqrt((w + p) * (h + p))


def crop_matrix(
    center: tuple[float, float],
    side: tuple[float, float],
    out_size: int,
    *,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The affine map taking an image window onto a square output crop.

    Image point ``center`` lands at output point ``out_size / 2 + offset``; a window of
    ``side = (sx, sy)`` image pixels spans the ``out_size`` output pixels.

    Args:
        center: ``(cx, cy)`` in image pixels.
        side: window width and height in image pixels (both ``> 0``).
        out_size: output side in pixels.
        offset: ``(dx, dy)`` output pixels by which ``center`` lands off the crop centre.

    Returns:
        ``(2, 3)`` float64 matrix, continuous coordinates (see the module docstring).
    """
    kx = out_size / side[0]
    ky = out_size / side[1]
    return np.array(
        [
            [kx, 0.0, out_size / 2 + offset[0] - kx * center[0]],
            [0.0, ky, out_size / 2 + offset[1] - ky * center[1]],
        ],
        dtype=np.float64,
    )


def jittered_crop_matrix(
    box: np.ndarray,
    *,
    side: float,
    out_size: int,
    max_shift: float,
    max_scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A crop window around ``box``'s centre with random shift and scale.

    Draws, in this order, ``sx, sy = 1 + U(-1, 1) * max_scale`` and
    ``dx, dy = U(-1, 1) * max_shift``. The window is ``side * (sx, sy)`` image pixels and
    the box centre lands at ``out_size / 2 + (dx, dy)`` in the crop. With zero jitter the
    draws still happen, so the generator's stream does not depend on the settings.

    Args:
        box: ``(4,)`` float, ``(x0, y0, x1, y1)`` image pixels.
        side: unjittered window side in image pixels (``> 0``).
        out_size: crop side in pixels.
        max_shift: largest offset of the box centre from the crop centre, per axis, in
            crop pixels.
        max_scale: largest relative change of the window side, per axis (``< 1``).
        rng: source of the jitter (consumed: 4 draws).

    Returns:
        ``(2, 3)`` float64 matrix for :func:`warp_image`, :func:`warp_box`, :func:`warp_mask`.
    """
    scale = 1.0 + rng.uniform(-1.0, 1.0, size=2) * max_scale
    shift = rng.uniform(-1.0, 1.0, size=2) * max_shift
    center = (float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)
    return crop_matrix(
        center,
        (side * float(scale[0]), side * float(scale[1])),
        out_size,
        offset=(float(shift[0]), float(shift[1])),
    )


def _pixel_matrix(matrix: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> OpenCV's pixel-centre convention."""
    m = matrix.astype(np.float64).copy()
    # u_c = A x_c + t with x_c = x_i + 0.5, u_c = u_i + 0.5  =>  u_i = A x_i + (t + A 0.5 - 0.5)
    m[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
    return m


def warp_image(
    image: np.ndarray, matrix: np.ndarray, out_size: int, *, fill: tuple[float, float, float]
) -> np.ndarray:
    """Warp an image into a square crop (bilinear).

    Args:
        image: ``(H, W, 3)`` uint8.
        matrix: ``(2, 3)`` continuous-coordinate affine (:func:`crop_matrix`).
        out_size: crop side.
        fill: per-channel colour of areas outside the image.

    Returns:
        ``(out_size, out_size, 3)`` uint8.
    """
    return cv2.warpAffine(
        image,
        _pixel_matrix(matrix),
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(c) for c in fill),
    )


def warp_mask(mask: np.ndarray, matrix: np.ndarray, out_size: int) -> np.ndarray:
    """Warp a binary mask into a square crop (nearest neighbour, 0 outside the image).

    Args:
        mask: ``(H, W)`` uint8 (0/1) or bool.
        matrix: ``(2, 3)`` continuous-coordinate affine, the one used for the image.
        out_size: crop side.

    Returns:
        ``(out_size, out_size)`` uint8, 0/1.
    """
    return cv2.warpAffine(
        mask.astype(np.uint8, copy=False),
        _pixel_matrix(matrix),
        (out_size, out_size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def warp_box(box: np.ndarray, matrix: np.ndarray, out_size: int) -> np.ndarray:
    """Map a box through an affine warp: its 4 corners, their enclosing box, clipped.

    Args:
        box: ``(4,)`` float, ``(x0, y0, x1, y1)`` image pixels.
        matrix: ``(2, 3)`` continuous-coordinate affine.
        out_size: crop side; the result is clipped to ``[0, out_size]``.

    Returns:
        ``(4,)`` float32, ``(x0, y0, x1, y1)`` crop pixels.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]])
    mapped = corners @ matrix.T
    out = np.concatenate([mapped.min(axis=0), mapped.max(axis=0)])
    return np.clip(out, 0.0, float(out_size)).astype(np.float32)


def mean_color(image: np.ndarray) -> tuple[float, float, float]:
    """Per-channel mean of an ``(H, W, 3)`` uint8 image (the trackers' padding colour)."""
    m = cv2.mean(image)
    return (m[0], m[1], m[2])
