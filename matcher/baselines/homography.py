"""Homography geometry of the SIFT baseline: RANSAC fits and whether a fit is a real view.

Pure functions on ``(N, 2)`` point arrays and ``(4, 2)`` quadrilaterals (corners in the
order top-left, top-right, bottom-right, bottom-left, pixels, y down): fitting a RANSAC
homography, projecting points with it, measuring and checking the projected reference box
(convex, not mirrored, bounded anisotropy, mostly inside the scene), and finding the points
inside it. :mod:`matcher.baselines.sift` and the geometric verification stage
(:mod:`matcher.inference.geometric`) share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from matcher.errors import ConfigError

if TYPE_CHECKING:
    from matcher.baselines.sift import SiftParams


#: The robust estimators :func:`fit_homography` may use, by name: OpenCV's classic RANSAC,
#: and its USAC framework's presets (PROSAC sampling, SPRT early rejection of bad models,
#: local optimisation; ``usac_accurate`` with graph-cut local optimisation, ``usac_magsac``
#: with MAGSAC++ scoring), which reach the same fits with far fewer model evaluations.
RANSAC_METHODS = {
    "ransac": cv2.RANSAC,
    "usac_default": cv2.USAC_DEFAULT,
    "usac_accurate": cv2.USAC_ACCURATE,
    "usac_fast": cv2.USAC_FAST,
    "usac_magsac": cv2.USAC_MAGSAC,
}


def check_ransac_method(name: str) -> None:
    """Raise :class:`~matcher.errors.ConfigError` unless ``name`` is in :data:`RANSAC_METHODS`."""
    if name not in RANSAC_METHODS:
        raise ConfigError(f"ransac_method must be one of {', '.join(RANSAC_METHODS)}, got {name!r}")


def fit_homography(
    src: np.ndarray, dst: np.ndarray, p: SiftParams
) -> tuple[np.ndarray, np.ndarray] | None:
    """Robust homography ``src -> dst`` (``(N, 2)`` points) with ``p``'s estimator, distance
    and iterations: ``(3x3 homography, (N,) bool inliers)``, or ``None`` when none is found."""
    homography, inliers = cv2.findHomography(
        src.reshape(-1, 1, 2),
        dst.reshape(-1, 1, 2),
        RANSAC_METHODS[p.ransac_method],
        p.ransac_reproj,
        maxIters=p.ransac_iters,
        confidence=0.995,
    )
    if homography is None or inliers is None or not np.all(np.isfinite(homography)):
        return None
    return homography, inliers.ravel().astype(bool)


def project(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to ``(N, 2)`` points; returns ``(N, 2)`` float64."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(homography).T
    w = hom[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :2] / w
    return np.where(np.abs(w) > 1e-12, out, np.nan)


def _sides(quad: np.ndarray) -> np.ndarray:
    """Lengths of the top, right, bottom and left sides of a ``(4, 2)`` quadrilateral."""
    return np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """Mean width (top and bottom sides) and height (left and right) of a quadrilateral."""
    top, right, bottom, left = _sides(np.asarray(quad, np.float64))
    return ((top + bottom) / 2, (left + right) / 2)


def signed_area(quad: np.ndarray) -> float:
    """Shoelace area of a polygon; positive for the reference's corner order (y down)."""
    x, y = np.asarray(quad, np.float64).T
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def plausible_quad(
    quad: np.ndarray,
    *,
    reference_size: tuple[float, float],
    scene_size: tuple[int, int],
    max_anisotropy: float,
    min_side: float,
) -> bool:
    """Whether projected reference corners look like a real view of the product.

    Args:
        quad: ``(4, 2)`` projected corners (top-left, top-right, bottom-right, bottom-left).
        reference_size: ``(width, height)`` of the reference box.
        scene_size: ``(height, width)`` of the scene the corners are in.
        max_anisotropy: largest ratio of opposite sides, and of the quadrilateral's aspect
            ratio to the reference's.
        min_side: shortest acceptable side, pixels.

    Returns:
        ``True`` for a finite, convex, non-mirrored quadrilateral of plausible shape with
        at least a quarter of its bounding box inside the scene.
    """
    quad = np.asarray(quad, np.float64)
    if quad.shape != (4, 2) or not np.all(np.isfinite(quad)):
        return False
    if signed_area(quad) <= 0 or not cv2.isContourConvex(quad.astype(np.float32)[:, None]):
        return False
    top, right, bottom, left = _sides(quad)
    if min(top, right, bottom, left) < min_side:
        return False
    if max(top / bottom, bottom / top, left / right, right / left) > max_anisotropy:
        return False
    ref_aspect = reference_size[0] / reference_size[1]
    aspect = ((top + bottom) / 2) / ((left + right) / 2)
    if max(aspect / ref_aspect, ref_aspect / aspect) > max_anisotropy:
        return False
    height, width = scene_size
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    inside_w = max(0.0, min(x1, width) - max(x0, 0.0))
    inside_h = max(0.0, min(y1, height) - max(y0, 0.0))
    return inside_w * inside_h >= 0.25 * (x1 - x0) * (y1 - y0)


def points_in_quad(quad: np.ndarray, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Which ``(N, 2)`` points lie inside the quadrilateral (``(N,)`` bool)."""
    if len(points) == 0:
        return np.zeros(0, bool)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    # Rasterise the (clipped) quadrilateral around its own bounding box only.
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, size[1]), min(y1, size[0])
    if x1 <= x0 or y1 <= y0:
        return np.zeros(len(points), bool)
    raster = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    shifted = np.round(quad - [x0, y0]).astype(np.int32)
    cv2.fillConvexPoly(raster, shifted, 1)
    px = np.round(points[:, 0]).astype(int) - x0
    py = np.round(points[:, 1]).astype(int) - y0
    ok = (px >= 0) & (py >= 0) & (px < raster.shape[1]) & (py < raster.shape[0])
    out = np.zeros(len(points), bool)
    out[ok] = raster[py[ok], px[ok]] > 0
    return out
