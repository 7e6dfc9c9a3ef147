"""VOT regions and their overlap, computed the way the VOT toolkit's C library does.

The VOT benchmarks (and PySOT's toolkit, which builds that C library) do not intersect
polygons analytically: both regions are rasterised on the pixel grid of their common
bounding window and the overlap is ``|A and B| / |A or B|`` in pixels. The scores only
reproduce the published ones when that rasterisation is reproduced to the pixel, so this
module follows it step by step, vectorised over many region pairs with numpy:

1. a region is a polygon of ``float32`` corners; a rectangle ``x, y, w, h`` becomes the
   corners ``(x, y) (x+w, y) (x+w, y+h) (x, y+h)`` (sums in float64, then float32);
2. each polygon's bounds are rounded outwards (floor/ceil) and intersected with the
   image bounds (``0..width`` x ``0..height``); the window starts at the smaller left/top
   and spans ``int(max right - left) + 1`` columns (rows alike);
3. degenerate cases give 0 before rasterising: a bounds area ratio under ``1e-10``, an
   empty window, or bounds that do not overlap;
4. both polygons are shifted into the window (float32), their corners rounded half away
   from zero, and rasterised row by row: every non-horizontal edge whose integer y-range
   holds the row gives a node ``trunc(x_i + (row - y_i) / (y_j - y_i) * (x_j - x_i))``
   (float64); the sorted nodes are walked in pairs, a pair of equal nodes skipping one
   node, a pair ``a < b`` filling columns ``max(a, 0) .. min(b, width - 1)``, a node at or
   right of the window ending the row;
5. the result is ``float32(intersection) / float32(union)`` — a float32 value.

Special regions are a single number: ``1`` initialisation, ``2`` failure, ``0`` a frame
skipped after a failure (VOT's supervised protocol). Their overlap is NaN.

Steps 1-3 and 5 are here; the rasterising of step 4 is :mod:`.raster`.

Shape shorthand: ``N`` region pairs, ``K`` corners per polygon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainers.evaluate.tracking.raster import raster_counts, round_half_away

#: Special region codes of VOT result files.
INIT, FAILURE, SKIP = 1, 2, 0


@dataclass(frozen=True, eq=False)
class Regions:
    """A trajectory of VOT regions, each a special code, a rectangle or a polygon.

    Attributes:
        values: ``(N, M)`` float64, row ``i`` holding ``lengths[i]`` numbers then NaN.
        lengths: ``(N,)`` int64: 1 for a special code, 4 for ``x, y, w, h``, ``2k`` for a
            polygon of ``k`` corners ``x1, y1, ..., xk, yk``.
    """

    values: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> Regions:
        """Regions from a list of number lists (a result file's lines)."""
        width = max((len(r) for r in rows), default=1)
        values = np.full((len(rows), max(width, 1)), np.nan)
        lengths = np.zeros(len(rows), np.int64)
        for i, row in enumerate(rows):
            values[i, : len(row)] = row
            lengths[i] = len(row)
        return cls(values, lengths)

    @classmethod
    def from_array(cls, array: np.ndarray, *, nan_is_special: bool = False) -> Regions:
        """Regions from an ``(N, M)`` array of rectangles (``M == 4``) or polygons.

        Args:
            array: one region per row.
            nan_is_special: rows whose first number is NaN (a target absent in VOT-LT's
                ground truth) become the special region ``0``, as PySOT's toolkit does.
        """
        values = np.array(array, dtype=np.float64, ndmin=2)
        lengths = np.full(len(values), values.shape[1], np.int64)
        if nan_is_special:
            absent = np.isnan(values[:, 0])
            values[absent] = np.nan
            values[absent, 0] = SKIP
            lengths[absent] = 1
        return cls(values, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: slice | np.ndarray) -> Regions:
        return Regions(self.values[index], self.lengths[index])

    def special(self, code: int | None = None) -> np.ndarray:
        """``(N,)`` bool: the special regions (of ``code`` when given)."""
        is_special = self.lengths == 1
        if code is None:
            return is_special
        return is_special & (self.values[:, 0] == code)

    def row(self, index: int) -> list[float]:
        """Region ``index`` as a list of numbers."""
        return [float(v) for v in self.values[index, : self.lengths[index]]]


def polygon_corners(regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """Float32 polygon corners of every region, as the VOT library builds them.

    Returns:
        ``(corners, valid)``: ``(N, K, 2)`` float32 corners, polygons with fewer than
        ``K`` corners padded by repeating their last corner (which adds only horizontal,
        ignored edges); ``(N,)`` bool, false for special regions and regions with a
        non-finite or missing coordinate.
    """
    values, lengths = regions.values, regions.lengths
    n = len(lengths)
    corners_per = np.where(lengths == 4, 4, lengths // 2)
    k = int(max(corners_per.max(initial=1), 1))
    corners = np.zeros((n, k, 2), np.float64)
    rect = lengths == 4
    if rect.any():
        x, y, w, h = (values[rect, i] for i in range(4))
        xs = np.stack([x, x + w, x + w, x], 1)
        ys = np.stack([y, y, y + h, y + h], 1)
        corners[rect, :4] = np.stack([xs, ys], 2)
    poly = (lengths != 4) & (corners_per >= 1)
    for count in np.unique(corners_per[poly]):
        rows = poly & (corners_per == count)
        pts = values[rows, : 2 * count].reshape(-1, count, 2)
        corners[rows, :count] = pts
        corners[rows, count:] = pts[:, -1:, :]
    valid = (lengths >= 2) & np.isfinite(corners).all(axis=(1, 2))
    corners[~valid] = 0.0
    return corners.astype(np.float32), valid


def vot_overlaps(
    a: Regions, b: Regions, bounds: tuple[float, float] | np.ndarray | None = None
) -> np.ndarray:
    """Overlap of ``a[i]`` with ``b[i]`` for every ``i``, as VOT's ``region_overlap``.

    Args:
        a: regions, e.g. a tracker's trajectory.
        b: as many regions, e.g. the ground truth.
        bounds: image ``(width, height)`` clipping both regions (shared, or ``(N, 2)`` per
            pair); ``None`` for no clipping.

    Returns:
        ``(N,)`` float64 holding float32 values; NaN where either region is special (or
        has no finite polygon).
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} regions against {len(b)}")
    n = len(a)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    p1, valid1 = polygon_corners(a)
    p2, valid2 = polygon_corners(b)
    region_bounds = np.empty((n, 4), np.float32)  # top, bottom, left, right
    if bounds is None:
        region_bounds[:] = (-np.inf, np.inf, -np.inf, np.inf)
    else:
        wh = np.broadcast_to(np.asarray(bounds, np.float64), (n, 2))
        region_bounds[:, 0] = 0
        region_bounds[:, 1] = wh[:, 1]
        region_bounds[:, 2] = 0
        region_bounds[:, 3] = wh[:, 0]
    todo = valid1 & valid2
    special = (a.lengths == 1) | (b.lengths == 1)
    out[~todo & ~special] = 0.0
    if todo.any():
        out[todo] = _overlap(p1[todo], p2[todo], region_bounds[todo])
    return out


def vot_overlaps_both_bounds(
    a: Regions, b: Regions, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Overlaps with bounds ``(width, height)`` and with ``(width - 1, height - 1)`` (what
    VOT's accuracy and EAO use), the second recomputed only where the bounds matter.

    Args:
        a, b: regions.
        sizes: ``(N, 2)`` image ``(width, height)`` per pair.

    Returns:
        ``(overlaps_wh, overlaps_shrunk)``, each ``(N,)``.
    """
    sizes = np.asarray(sizes, np.float64)
    full = vot_overlaps(a, b, sizes)
    reach = np.full((len(a), 2), -np.inf, np.float32)
    for regions in (a, b):
        corners, valid = polygon_corners(regions)
        if len(corners):
            far = np.ceil(corners.max(axis=1))
            reach = np.where(valid[:, None], np.maximum(reach, far), reach)
    redo = np.flatnonzero((reach > (sizes - 1).astype(np.float32)).any(axis=1))
    shrunk = full.copy()
    if redo.size:
        shrunk[redo] = vot_overlaps(a[redo], b[redo], sizes[redo] - 1)
    return full, shrunk


def vot_overlap(
    a: Sequence[float], b: Sequence[float], bounds: tuple[float, float] | None = None
) -> float:
    """Overlap of one region with another (see :func:`vot_overlaps`)."""
    return float(vot_overlaps(Regions.from_rows([a]), Regions.from_rows([b]), bounds)[0])


# -- the VOT library's steps, vectorised ---------------------------------------------------


def _pick(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(cond, a, b)


def _rounded_bounds(poly: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """``(N, 4)`` float32 top, bottom, left, right: rounded out, then within ``limits``."""
    xs, ys = poly[..., 0], poly[..., 1]
    own = np.stack(
        [np.floor(ys.min(1)), np.ceil(ys.max(1)), np.floor(xs.min(1)), np.ceil(xs.max(1))], 1
    ).astype(np.float32)
    out = np.empty_like(own)
    out[:, 0] = _pick(own[:, 0] > limits[:, 0], own[:, 0], limits[:, 0])  # MAX
    out[:, 1] = _pick(own[:, 1] < limits[:, 1], own[:, 1], limits[:, 1])  # MIN
    out[:, 2] = _pick(own[:, 2] > limits[:, 2], own[:, 2], limits[:, 2])
    out[:, 3] = _pick(own[:, 3] < limits[:, 3], own[:, 3], limits[:, 3])
    return out


def _as_int(values: np.ndarray) -> np.ndarray:
    """C's float -> int conversion (truncation), with non-finite values as 0."""
    finite = np.isfinite(values)
    clipped = np.clip(np.where(finite, values, 0), -(2.0**31), 2.0**31 - 1)
    return np.trunc(clipped).astype(np.int64)


def _overlap(p1: np.ndarray, p2: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Overlaps of valid polygon pairs; ``limits`` ``(N, 4)`` float32 image bounds."""
    n = len(p1)
    b1, b2 = _rounded_bounds(p1, limits), _rounded_bounds(p2, limits)
    left = _pick(b1[:, 2] < b2[:, 2], b1[:, 2], b2[:, 2])
    top = _pick(b1[:, 0] < b2[:, 0], b1[:, 0], b2[:, 0])
    right = _pick(b1[:, 3] > b2[:, 3], b1[:, 3], b2[:, 3])
    bottom = _pick(b1[:, 1] > b2[:, 1], b1[:, 1], b2[:, 1])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        width = _as_int(right - left) + 1
        height = _as_int(bottom - top) + 1
        area1 = (b1[:, 3] - b1[:, 2]) * (b1[:, 1] - b1[:, 0])  # float32
        area2 = (b2[:, 3] - b2[:, 2]) * (b2[:, 1] - b2[:, 0])
        a1, a2 = area1.astype(np.float64), area2.astype(np.float64)
        zero = (a1 / a2 < 1e-10) | (a2 / a1 < 1e-10) | (width < 1) | (height < 1)
        # bounds_overlap: intersection over union of the two bounds, float32; "== 0"
        # holds for zero and for negative ratios (clamped to 0), never for NaN.
        iw = _pick(b1[:, 3] < b2[:, 3], b1[:, 3], b2[:, 3]) - _pick(
            b1[:, 2] > b2[:, 2], b1[:, 2], b2[:, 2]
        )
        ih = _pick(b1[:, 1] < b2[:, 1], b1[:, 1], b2[:, 1]) - _pick(
            b1[:, 0] > b2[:, 0], b1[:, 0], b2[:, 0]
        )
        inter = iw * ih
        ratio = inter / (area1 + area2 - inter)
        zero |= ratio <= 0
    out = np.zeros(n, np.float32)
    todo = np.flatnonzero(~zero)
    if todo.size == 0:
        return out.astype(np.float64)
    offset = np.stack([-left, -top], 1).astype(np.float32)[:, None, :]
    r1 = round_half_away(p1 + offset)
    r2 = round_half_away(p2 + offset)
    inter_px, union_px = raster_counts(r1[todo], r2[todo], width[todo], height[todo])
    with np.errstate(invalid="ignore", divide="ignore"):
        out[todo] = inter_px.astype(np.float32) / union_px.astype(np.float32)
    return out.astype(np.float64)
