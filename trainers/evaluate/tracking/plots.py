"""Tracking benchmark plots drawn with OpenCV, styled after PySOT's toolkit plots.

One line per tracker, legend ``[score] name`` sorted by score (best first) in the lower left
as PySOT places it: OPE success plots (``Overlap threshold`` / ``Success rate``, score the
AUC), precision plots (``Location error threshold`` / ``Precision``, score at 20 px),
LaSOT's normalised precision, GOT-10k's success curve (score AO), VOT's expected-overlap
curve over sequence length (the EAO interval shaded, score EAO) and VOT-LT's
precision-recall curve (score F). :func:`write_plots` writes the PNGs of one report.
(matplotlib is not a dependency of the project; the pictures are ``HxWx3`` uint8 RGB.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: Line colours (RGB), reused in turn.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (214, 39, 40),
    (31, 119, 180),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (30, 30, 30)
_GRID = (220, 220, 220)
_LEFT, _TOP, _PLOT_W, _PLOT_H = 80, 50, 560, 420
_WIDTH, _HEIGHT = _LEFT + _PLOT_W + 30, _TOP + _PLOT_H + 60


@dataclass(frozen=True)
class Curve:
    """One tracker's line: ``x`` and ``y`` values, its legend label and score."""

    label: str
    x: np.ndarray
    y: np.ndarray
    score: float


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(canvas, text, org, _FONT, scale, _INK, 1, cv2.LINE_AA)


def draw_curves(
    curves: Sequence[Curve],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    xlim: tuple[float, float],
    ylim: tuple[float, float] = (0.0, 1.0),
    band: tuple[float, float] | None = None,
) -> np.ndarray:
    """Draw curves on one set of axes.

    Args:
        curves: the lines (drawn and listed best score first).
        title: text above the axes.
        xlabel, ylabel: axis labels.
        xlim, ylim: axis ranges.
        band: an ``x`` interval shaded grey (VOT's EAO interval).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    canvas = np.full((_HEIGHT, _WIDTH, 3), 255, np.uint8)
    (x0, x1), (y0, y1) = xlim, ylim

    def px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = _LEFT + (np.asarray(x, float) - x0) / (x1 - x0) * _PLOT_W
        v = _TOP + (1 - (np.asarray(y, float) - y0) / (y1 - y0)) * _PLOT_H
        return np.stack([u, v], -1)

    if band is not None:
        a, b = px(np.array(band), np.array([y1, y0]))
        cv2.rectangle(
            canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), (236, 236, 236), -1
        )
    for i in range(11):
        gx = x0 + (x1 - x0) * i / 10
        gy = y0 + (y1 - y0) * i / 10
        u = int(px(np.array(gx), np.array(y0))[0])
        v = int(px(np.array(x0), np.array(gy))[1])
        cv2.line(canvas, (u, _TOP), (u, _TOP + _PLOT_H), _GRID, 1)
        cv2.line(canvas, (_LEFT, v), (_LEFT + _PLOT_W, v), _GRID, 1)
        if i % 2 == 0:
            tick = f"{gx:.0f}" if x1 - x0 > 20 else f"{gx:g}"
            _text(canvas, tick, (u - 10, _TOP + _PLOT_H + 18))
            _text(canvas, f"{gy:.1f}", (_LEFT - 35, v + 5))
    cv2.rectangle(canvas, (_LEFT, _TOP), (_LEFT + _PLOT_W, _TOP + _PLOT_H), _INK, 1)
    _text(canvas, title, (_LEFT, 30), 0.6)
    _text(canvas, xlabel, (_LEFT + _PLOT_W // 2 - 4 * len(xlabel), _TOP + _PLOT_H + 42))
    label = np.full((20, 8 * len(ylabel) + 10, 3), 255, np.uint8)
    cv2.putText(label, ylabel, (4, 15), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    rotated = np.rot90(label)
    top = _TOP + _PLOT_H // 2 - rotated.shape[0] // 2
    canvas[max(0, top) : max(0, top) + rotated.shape[0], 5 : 5 + rotated.shape[1]] = rotated[
        : _HEIGHT - max(0, top)
    ]
    ranked = sorted(curves, key=lambda c: -np.nan_to_num(c.score, nan=-1.0))
    for k, curve in enumerate(ranked):
        colour = PALETTE[k % len(PALETTE)][::-1]  # drawn in BGR, converted at the end
        keep = np.isfinite(curve.x) & np.isfinite(curve.y)
        points = px(curve.x[keep], np.clip(curve.y[keep], y0, y1))
        points[:, 0] = np.clip(points[:, 0], _LEFT, _LEFT + _PLOT_W)
        if len(points) > 1:
            cv2.polylines(
                canvas, [np.round(points).astype(np.int32)], False, colour, 2, cv2.LINE_AA
            )
    # The legend, in the lower left of the axes.
    row = 20
    bottom = _TOP + _PLOT_H - 12
    for k, curve in enumerate(ranked):
        colour = PALETTE[k % len(PALETTE)][::-1]
        y = bottom - (len(ranked) - 1 - k) * row
        cv2.line(canvas, (_LEFT + 10, y - 4), (_LEFT + 34, y - 4), colour, 2, cv2.LINE_AA)
        _text(canvas, f"[{curve.score:.3f}] {curve.label}", (_LEFT + 40, y))
    return np.ascontiguousarray(canvas[:, :, ::-1])


def write_plots(report: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write the plots of one benchmark report (:func:`~.scoring.score_trackers`).

    Returns:
        The PNG files written.
    """
    from trainers.evaluate.tracking import ope

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    bench = report["benchmark"]
    trackers: dict[str, dict[str, Any]] = report["trackers"]
    figures: list[tuple[str, np.ndarray]] = []

    def lines(curve_key: str, x: np.ndarray, score_key: str) -> list[Curve]:
        return [
            Curve(name, x, np.asarray(t["curves"][curve_key], float), float(t[score_key]))
            for name, t in trackers.items()
        ]

    if report["protocol"] == "ope":
        figures.append(("success", draw_curves(
            lines("success", ope.SUCCESS_THRESHOLDS, "success_auc"),
            title=f"Success plots of OPE on {bench}", xlabel="Overlap threshold",
            ylabel="Success rate", xlim=(0, 1))))  # fmt: skip
        figures.append(("precision", draw_curves(
            lines("precision", ope.PRECISION_THRESHOLDS.astype(float), "precision"),
            title=f"Precision plots of OPE on {bench}", xlabel="Location error threshold",
            ylabel="Precision", xlim=(0, 50))))  # fmt: skip
        if any("norm_precision" in t for t in trackers.values()):
            figures.append(("norm_precision", draw_curves(
                lines("norm_precision", ope.NORM_PRECISION_THRESHOLDS, "norm_precision"),
                title=f"Normalized Precision plots of OPE on {bench}",
                xlabel="Location error threshold", ylabel="Precision", xlim=(0, 0.5))))  # fmt: skip
        if any("ao" in t for t in trackers.values()):
            figures.append(("got10k_success", draw_curves(
                lines("got10k_success", ope.GOT10K_THRESHOLDS, "ao"),
                title=f"Success plots on {bench} (AO)", xlabel="Overlap threshold",
                ylabel="Success rate", xlim=(0, 1))))  # fmt: skip
    elif report["protocol"] == "vot":
        longest = max(len(t["curves"]["expected_overlap"]) for t in trackers.values())
        curves = [
            Curve(name, np.arange(1, len(t["curves"]["expected_overlap"]) + 1, dtype=float),
                  np.asarray(t["curves"]["expected_overlap"], float), float(t["eao"]))
            for name, t in trackers.items()
        ]  # fmt: skip
        low, high = report.get("eao_interval", (1, longest))
        figures.append(("expected_overlap", draw_curves(
            curves, title=f"Expected overlap on {bench} (EAO over {low}-{high})",
            xlabel="Sequence length", ylabel="Expected overlap",
            xlim=(1, max(longest, high)), band=(low, high))))  # fmt: skip
    else:
        curves = [
            Curve(name, np.asarray(t["curves"]["recall"], float),
                  np.asarray(t["curves"]["precision"], float), float(t["lt_f1"]))
            for name, t in trackers.items()
        ]  # fmt: skip
        figures.append(("precision_recall", draw_curves(
            curves, title=f"Tracking precision/recall on {bench} (F-score)",
            xlabel="Tracking recall", ylabel="Tracking precision", xlim=(0, 1))))  # fmt: skip
    written = []
    for kind, image in figures:
        path = out / f"{bench}_{kind}.png"
        if not cv2.imwrite(str(path), image[:, :, ::-1]):
            raise OSError(f"cannot write {path}")
        written.append(path)
    return written
