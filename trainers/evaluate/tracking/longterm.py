"""VOT long-term scores: tracking precision, recall and F-score over confidence thresholds,
as PySOT's ``F1Benchmark`` computes them.

All confidences of a tracker (every sequence, first frames excepted) give 98 thresholds
(sorted confidences at evenly spaced ranks) plus -inf and +inf. At a threshold, a frame
counts as *reported* when its confidence reaches it (for -inf: is positive); precision is
the mean overlap over reported frames (1 when none), recall the summed overlap over
reported frames divided by the frames where the target is visible. Per sequence both are
curves over the thresholds; the tracker's curves are their means over sequences, its
F-score the best ``2 P R / (P + R)`` along them (with that threshold's P and R).
Overlaps are VOT region overlaps with bounds ``(width, height)``; absent-target and
first frames overlap 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESOLUTION = 100


def thresholds(scores: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """``(resolution,)`` thresholds, high to low: +inf, confidences at evenly spaced ranks,
    -inf (NaN confidences ignored)."""
    values = np.sort(scores[~np.isnan(scores)])
    out = np.zeros(resolution)
    out[0], out[-1] = -np.inf, np.inf
    if values.size:
        delta = np.floor(len(values) / (resolution - 2))
        idx = np.floor(np.linspace(delta - 1, len(values) - delta, resolution - 2) + 0.5)
        out[1:-1] = values[np.clip(idx.astype(np.int32), 0, len(values) - 1)]
    return out[::-1]


def sequence_pr(
    overlaps: np.ndarray, scores: np.ndarray, levels: np.ndarray, *, visible: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of one sequence at each threshold of ``levels``."""
    overlaps = np.nan_to_num(np.asarray(overlaps, np.float64), nan=0.0)
    scores = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    precision = np.zeros(len(levels))
    recall = np.zeros(len(levels))
    for i, level in enumerate(levels):
        chosen = scores > 0 if level == -np.inf else scores >= level
        if not chosen.any():
            precision[i], recall[i] = 1.0, 0.0
        else:
            precision[i] = np.mean(overlaps[chosen])
            with np.errstate(divide="ignore", invalid="ignore"):
                recall[i] = np.sum(overlaps[chosen]) / visible
    return precision, recall


@dataclass(frozen=True)
class LTScores:
    """A tracker's long-term scores.

    Attributes:
        precision, recall, f1: at the threshold of the best F-score.
        precision_curve, recall_curve: ``(100,)`` means over sequences (high to low
            thresholds).
        per_sequence: sequence -> its best ``(precision, recall, f1)``.
    """

    precision: float
    recall: float
    f1: float
    precision_curve: np.ndarray
    recall_curve: np.ndarray
    per_sequence: dict[str, tuple[float, float, float]]


def f_scores(
    sequences: list[tuple[str, np.ndarray, np.ndarray, int]],
) -> LTScores:
    """F-score of one tracker.

    Args:
        sequences: ``(name, overlaps, confidences, visible frames)`` per sequence, in
            sorted order; overlaps and confidences as long as the sequence.
    """
    all_scores = np.concatenate([s for _, _, s, _ in sequences]) if sequences else np.zeros(0)
    levels = thresholds(all_scores)
    precisions, recalls, per_sequence = [], [], {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, overlaps, scores, visible in sequences:
            p, r = sequence_pr(overlaps, scores, levels, visible=visible)
            precisions.append(p)
            recalls.append(r)
            f = 2 * p * r / (p + r)
            best = int(np.argmax(f))
            per_sequence[name] = (float(p[best]), float(r[best]), float(f[best]))
        p = np.mean(precisions, axis=0)
        r = np.mean(recalls, axis=0)
        f = 2 * p * r / (p + r)
    best = int(np.argmax(f))
    return LTScores(float(p[best]), float(r[best]), float(f[best]), p, r, per_sequence)
