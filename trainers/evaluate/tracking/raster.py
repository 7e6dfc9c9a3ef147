"""The VOT library's polygon rasteriser, vectorised over many polygon pairs.

Polygons arrive rounded (integer corners, as float64) and shifted into their pair's window
of ``width`` x ``height`` pixels (:mod:`.region` does the rounding, bounds and shift).
Each raster row is filled as the VOT C library fills it: the non-horizontal edges whose
integer y-range holds the row give nodes ``trunc(x_i + (row - y_i) / (y_j - y_i) *
(x_j - x_i))`` in float64; the sorted nodes are walked in pairs — equal nodes skip one, a
pair ``a < b`` fills columns ``max(a, 0) .. min(b, width - 1)``, a node at or right of the
window ends the row. Rows crossed by exactly two edges (all but a few corner rows) take a
vectorised shortcut; the others run the walk itself, vectorised over rows.

Shape shorthand: ``P`` polygon pairs of a group, ``K`` corners per polygon, ``S`` spans per
row.
"""

from __future__ import annotations

import numpy as np

#: Raster rows processed together (bounds the memory of one vectorised pass).
CHUNK_ROWS = 1 << 19


def round_half_away(values: np.ndarray) -> np.ndarray:
    """C ``round`` of float32 values: halves away from zero; float64 results."""
    v = values.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def raster_counts(
    q1: np.ndarray, q2: np.ndarray, width: np.ndarray, height: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels in both rasterised polygons and in either, per pair (window coordinates).

    Args:
        q1, q2: ``(N, K, 2)`` float64 rounded corners of each pair's polygons.
        width, height: ``(N,)`` int64 window sizes.

    Returns:
        ``(intersection, union)`` pixel counts, ``(N,)`` float64 each.

    Pairs are processed in groups of similar window height (sorted by height), each group
    as dense ``(P, rows)`` arrays (edge by edge), so that rows need no gathering.
    """
    n = len(q1)
    inter = np.zeros(n)
    union = np.zeros(n)
    order = np.argsort(height, kind="stable")
    start = 0
    while start < n:
        # the group grows while its padded rows (its tallest window's, per pair) fit
        rest = height[order[start:]]
        fits = np.flatnonzero(rest * (np.arange(len(rest)) + 1) <= CHUNK_ROWS)
        stop = start + (int(fits[-1]) + 1 if fits.size else 1)
        idx = order[start:stop]
        rows = int(height[idx].max())
        s1, e1 = _row_spans(q1[idx], height[idx], width[idx], rows)
        s2, e2 = _row_spans(q2[idx], height[idx], width[idx], rows)
        len1 = np.clip(e1 - s1 + 1, 0, None).sum(-1)
        len2 = np.clip(e2 - s2 + 1, 0, None).sum(-1)
        both = np.zeros(len1.shape, np.int64)
        for i in range(s1.shape[-1]):
            for j in range(s2.shape[-1]):
                lo = np.maximum(s1[..., i], s2[..., j])
                hi = np.minimum(e1[..., i], e2[..., j])
                both += np.clip(hi - lo + 1, 0, None)
        inter[idx] = both.sum(1)
        union[idx] = (len1 + len2 - both).sum(1)
        start = stop
    return inter, union


def _row_spans(
    poly: np.ndarray, height: np.ndarray, width: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Filled column spans of every raster row of ``P`` polygons.

    Args:
        poly: ``(P, K, 2)`` float64 rounded corners in window coordinates.
        height: ``(P,)`` rows of each window (rows past it are empty).
        width: ``(P,)`` columns of each window.
        rows: rows computed per polygon (the tallest window).

    Returns:
        ``(P, rows, S)`` int64 starts and ends (inclusive), disjoint and increasing along
        ``S``; empty slots have ``start > end``.
    """
    p, k = poly.shape[:2]
    xi, yi = poly[..., 0], poly[..., 1]
    xj, yj = np.roll(xi, 1, axis=1), np.roll(yi, 1, axis=1)  # edge i joins corner i - 1
    lo, hi, r, dx = np.minimum(yi, yj), np.maximum(yi, yj), yj - yi, xj - xi
    row = np.arange(rows, dtype=np.float64)[None, :]
    inside = row < height[:, None]
    count = np.zeros((p, rows), np.int64)
    a = np.full((p, rows), np.inf)
    b = np.full((p, rows), -np.inf)
    crossings, nodes = [], []
    for e in range(k):  # one edge at a time: reductions over a short last axis are slow
        if not (r[:, e] != 0).any():
            crossings.append(None)
            nodes.append(None)
            continue
        crosses = (lo[:, e, None] <= row) & (row <= hi[:, e, None]) & inside
        crosses &= (r[:, e] != 0)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            node = np.trunc(
                xi[:, e, None]
                + (row - yi[:, e, None])
                / np.where(r[:, e] != 0, r[:, e], 1.0)[:, None]
                * dx[:, e, None]
            )
        count += crosses
        np.minimum(a, np.where(crosses, node, np.inf), out=a)
        np.maximum(b, np.where(crosses, node, -np.inf), out=b)
        crossings.append(crosses)
        nodes.append(node)
    spans = max(1, k // 2)
    starts = np.ones((p, rows, spans), np.int64)
    ends = np.zeros((p, rows, spans), np.int64)
    w = np.broadcast_to(width[:, None], (p, rows))
    # Rows crossed by two edges (all but a few corner rows): one span or none.
    fill = (count == 2) & (a != b) & (a < w) & (b >= 0)
    starts[..., 0] = np.where(fill, np.maximum(a, 0), 1).astype(np.int64)
    ends[..., 0] = np.where(fill, np.minimum(b, w - 1), 0).astype(np.int64)
    many = count >= 3
    if many.any():
        stacked = np.stack(
            [
                np.full(int(many.sum()), np.inf)
                if c is None
                else np.where(c[many], v[many], np.inf)
                for c, v in zip(crossings, nodes, strict=True)
            ],
            axis=1,
        )
        s, e = _walk_nodes(np.sort(stacked, axis=1), count[many], w[many], spans)
        starts[many] = s
        ends[many] = e
    return starts, ends


def _walk_nodes(
    nodes: np.ndarray, count: np.ndarray, width: np.ndarray, spans: int
) -> tuple[np.ndarray, np.ndarray]:
    """The VOT library's walk over each row's sorted nodes (rows with three or more).

    Args:
        nodes: ``(R, K)`` sorted nodes, ``inf`` past ``count``.
        count: ``(R,)`` nodes per row.
        width: ``(R,)`` window columns.
        spans: span slots per row.

    Returns:
        ``(R, spans)`` starts and ends, made disjoint (consecutive spans may share their
        boundary pixel in the walk; the later one then starts one pixel on).
    """
    num_rows, k = nodes.shape
    starts = np.ones((num_rows, spans), np.int64)
    ends = np.zeros((num_rows, spans), np.int64)
    filled = np.zeros(num_rows, np.int64)
    i = np.zeros(num_rows, np.int64)
    live = np.ones(num_rows, bool)
    rows = np.arange(num_rows)
    for _ in range(k - 1):
        cond = live & (i < count - 1)
        if not cond.any():
            break
        at = np.minimum(i, k - 2)
        a = nodes[rows, at]
        b = nodes[rows, at + 1]
        same = cond & (a == b)
        differ = cond & ~same
        stop = differ & (a >= width)
        fill = np.flatnonzero(differ & ~stop & (b >= 0))
        live &= ~stop
        slot = filled[fill]
        starts[fill, slot] = np.maximum(a[fill], 0).astype(np.int64)
        ends[fill, slot] = np.minimum(b[fill], width[fill] - 1).astype(np.int64)
        filled[fill] += 1
        i += same.astype(np.int64) + 2 * (differ & ~stop).astype(np.int64)
    for s in range(1, spans):
        later = filled > s
        starts[later, s] = np.maximum(starts[later, s], ends[later, s - 1] + 1)
    return starts, ends
