"""Crops around boxes: templates of references, and search crops for second looks.

:func:`template_crop` cuts a reference's template (the box plus context, area-averaged
when shrinking). :func:`search_crops` takes tracker-style search crops around candidates:
both the SiamMask mask pass and distractor-aware re-scoring look again at each candidate
the way a tracker would: a square crop centred on the box, of side
``s_z * instance_size / exemplar_size`` with ``s_z = sqrt((w + p)(h + p))`` and
``p = context * (w + h)``, resized to ``instance_size``. In such a crop the candidate sits
at the centre score cell at the template's scale.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from matcher.inference.crops import subwindow


def template_crop(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    *,
    exemplar_size: int,
    context_amount: float,
) -> tuple[np.ndarray, float]:
    """Square crop of the box plus context, resized to ``exemplar_size`` (area averaging).

    Args:
        image: ``(H, W, 3)`` uint8.
        box: ``(x0, y0, x1, y1)``.
        exemplar_size: output side.
        context_amount: context as a fraction of ``w + h``.

    Returns:
        ``(crop, scale)`` where ``scale`` is template pixels per image pixel.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ctx = context_amount * (w + h)
    side = math.sqrt((w + ctx) * (h + ctx))
    scale = exemplar_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Map the square [cx - side/2, cx + side/2] onto [0, exemplar_size] (pixel centres).
    matrix = np.array(
        [
            [scale, 0.0, -(cx - side / 2) * scale - 0.5 + 0.5 * scale],
            [0.0, scale, -(cy - side / 2) * scale - 0.5 + 0.5 * scale],
        ],
        dtype=np.float64,
    )
    fill = tuple(float(v) for v in image.reshape(-1, 3).mean(axis=0))
    if scale < 1.0:
        # Shrink with area averaging first so small templates do not alias.
        factor = max(1, int(1.0 / scale))
        if factor > 1:
            small = cv2.resize(
                image,
                (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor)),
                interpolation=cv2.INTER_AREA,
            )
            sx = image.shape[1] / small.shape[1]
            sy = image.shape[0] / small.shape[0]
            pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
            # compose: template <- image <- small
            full = np.vstack([matrix, [0, 0, 1]]) @ np.vstack([pre, [0, 0, 1]])
            matrix, image = full[:2], small
    crop = cv2.warpAffine(
        image,
        matrix,
        (exemplar_size, exemplar_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return crop, scale


def search_crops(
    scene: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    *,
    exemplar_size: int,
    instance_size: int,
    context_amount: float,
) -> tuple[list[np.ndarray], list[tuple[float, float, float]]]:
    """Crops centred on ``boxes``.

    Args:
        scene: ``(H, W, 3)`` uint8.
        boxes: ``(x0, y0, x1, y1)`` in scene pixels.
        exemplar_size / instance_size / context_amount: network geometry.

    Returns:
        ``(crops, crop_boxes)``: ``(instance_size, instance_size, 3)`` uint8 crops and
        each crop's ``(x0, y0, side)`` in the scene.
    """
    fill = scene.reshape(-1, 3).mean(axis=0)
    crops, crop_boxes = [], []
    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        ctx = context_amount * (w + h)
        s_z = math.sqrt((w + ctx) * (h + ctx))
        side = max(1, round(s_z * instance_size / exemplar_size))
        center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        crops.append(subwindow(scene, center, instance_size, side, fill))
        crop_boxes.append((center[0] - side / 2, center[1] - side / 2, float(side)))
    return crops, crop_boxes


def centre_peak(prob: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most confident cell within ``radius`` cells of each map's centre.

    Args:
        prob: ``(N, S, S)`` probabilities.
        radius: half-size of the searched square.

    Returns:
        ``(values (N,), rows (N,), cols (N,))``.
    """
    n, size = prob.shape[0], prob.shape[1]
    c = size // 2
    lo, hi = max(0, c - radius), min(size, c + radius + 1)
    near = prob[:, lo:hi, lo:hi]
    flat = near.reshape(n, -1)
    idx = flat.argmax(axis=1)
    return flat[np.arange(n), idx], lo + idx // near.shape[2], lo + idx % near.shape[2]
