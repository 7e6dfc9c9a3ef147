"""A reliability diagram drawn with OpenCV: accuracy against confidence, per score bin.

The upper panel plots, for each curve (one per matcher), the observed accuracy of every
non-empty bin at its mean confidence, joined by a line, over the dashed diagonal of perfect
calibration; the lower panel shows each bin's count as grouped bars (one colour per curve),
so that a point resting on few trials can be told apart. The picture is an ``HxWx3`` uint8
RGB array (matplotlib is not a dependency of the project).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from trainers.evaluate.calibration import ReliabilityBin

#: Curve colours (RGB), reused in turn.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_GRID = (225, 225, 225)

# Layout, in pixels.
_LEFT, _PLOT, _TOP = 90, 500, 60
_COUNTS_TOP, _COUNTS_HEIGHT = _TOP + _PLOT + 55, 140
_LEGEND_TOP = _COUNTS_TOP + _COUNTS_HEIGHT + 50
_LEGEND_ROW = 24
_WIDTH = _LEFT + _PLOT + 40


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(canvas, text, org, _FONT, scale, _INK, 1, cv2.LINE_AA)


def _to_px(x: float, y: float) -> tuple[int, int]:
    """Plot coordinates in ``[0, 1]^2`` to canvas pixels of the upper panel."""
    return (round(_LEFT + x * _PLOT), round(_TOP + (1.0 - y) * _PLOT))


def _axes(canvas: np.ndarray, title: str) -> None:
    _text(canvas, title, (_LEFT, 30), 0.6)
    _text(canvas, "fraction correct", (10, _TOP - 10))
    for i in range(6):
        v = i / 5
        x, y = _to_px(v, v)
        cv2.line(canvas, (x, _TOP), (x, _TOP + _PLOT), _GRID, 1)
        cv2.line(canvas, (_LEFT, y), (_LEFT + _PLOT, y), _GRID, 1)
        _text(canvas, f"{v:.1f}", (x - 12, _TOP + _PLOT + 18))
        _text(canvas, f"{v:.1f}", (_LEFT - 35, y + 5))
    _text(canvas, "top score (confidence)", (_LEFT + _PLOT // 2 - 90, _TOP + _PLOT + 38))
    cv2.rectangle(canvas, (_LEFT, _TOP), (_LEFT + _PLOT, _TOP + _PLOT), _INK, 1)
    # The diagonal of perfect calibration, dashed.
    dashes = 25
    for i in range(0, dashes, 2):
        a, b = i / dashes, (i + 1) / dashes
        cv2.line(canvas, _to_px(a, a), _to_px(b, b), (150, 150, 150), 1, cv2.LINE_AA)


def _counts(
    canvas: np.ndarray, curves: Sequence[tuple[str, Sequence[ReliabilityBin]]], num_bins: int
) -> None:
    top, bottom = _COUNTS_TOP, _COUNTS_TOP + _COUNTS_HEIGHT
    peak = max((b.count for _, bins in curves for b in bins), default=0)
    _text(canvas, f"trials per bin (max {peak})", (_LEFT, top - 10))
    cv2.rectangle(canvas, (_LEFT, top), (_LEFT + _PLOT, bottom), _INK, 1)
    if peak == 0 or num_bins == 0:
        return
    slot = _PLOT / num_bins
    width = max(1.0, (slot - 4) / len(curves))
    for k, (_, bins) in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        for i, b in enumerate(bins):
            if not b.count:
                continue
            x0 = round(_LEFT + i * slot + 2 + k * width)
            x1 = max(x0 + 1, round(_LEFT + i * slot + 2 + (k + 1) * width) - 1)
            height = round((_COUNTS_HEIGHT - 2) * b.count / peak)
            cv2.rectangle(canvas, (x0, bottom - 1 - height), (x1, bottom - 1), colour, -1)
    for i in range(0, num_bins + 1, max(1, num_bins // 5)):
        x = round(_LEFT + i * slot)
        _text(canvas, f"{i / num_bins:.1f}", (x - 12, bottom + 18))


def draw_reliability_diagram(
    curves: Sequence[tuple[str, Sequence[ReliabilityBin]]],
    *,
    title: str = "Reliability of the top score",
) -> np.ndarray:
    """Draw one reliability curve per ``(label, bins)`` pair.

    Args:
        curves: the legend label of each curve and its bins
            (:func:`trainers.evaluate.calibration.reliability_bins`); every curve has the
            same number of bins.
        title: text above the plot.

    Returns:
        ``(H, W, 3)`` uint8 RGB picture.

    Raises:
        ValueError: no curve, or curves with different numbers of bins.
    """
    if not curves:
        raise ValueError("a reliability diagram needs at least one curve")
    num_bins = {len(bins) for _, bins in curves}
    if len(num_bins) != 1:
        raise ValueError(f"curves have different numbers of bins: {sorted(num_bins)}")
    height = _LEGEND_TOP + _LEGEND_ROW * len(curves) + 10
    canvas = np.full((height, _WIDTH, 3), 255, np.uint8)
    _axes(canvas, title)
    for k, (label, bins) in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        points = [_to_px(b.confidence, b.accuracy) for b in bins if b.count]
        if len(points) > 1:
            cv2.polylines(canvas, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(canvas, p, 4, colour, -1, cv2.LINE_AA)
        y = _LEGEND_TOP + k * _LEGEND_ROW
        cv2.rectangle(canvas, (_LEFT, y - 11), (_LEFT + 22, y + 1), colour, -1)
        _text(canvas, label, (_LEFT + 32, y))
    _counts(canvas, curves, num_bins.pop())
    return canvas
