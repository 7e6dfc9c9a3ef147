"""Ranking and calibration metrics of detection scores: AUROC, reliability bins and ECE.

* :func:`auroc` — the area under the ROC curve of scores for positives against negatives,
  computed from ranks (the Mann-Whitney statistic; tied scores count one half), so that it
  needs no ROC curve and no extra dependency;
* :func:`reliability_bins` — confidences cut into equal-width bins over ``[0, 1]``, with each
  bin's count, mean confidence and observed accuracy (the points of a reliability diagram);
* :func:`expected_calibration_error` — the count-weighted mean gap ``|accuracy - confidence|``
  over those bins.

Confidences are probabilities in ``[0, 1]``; values outside are clipped. Labels are 0/1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bins of the reliability diagram and of the ECE.
NUM_BINS = 10


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` in increasing order; tied values share their mean rank.

    Args:
        values: ``(N,)`` numbers.

    Returns:
        ``(N,)`` float64 ranks, aligned with ``values``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Start of each run of equal values in sorted order, and the run each position is in.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run = np.repeat(np.arange(len(starts)), ends - starts)
    mean_rank = (starts + 1 + ends) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), np.float64)
    ranks[order] = mean_rank[run]
    return ranks


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float | None:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative, ties counting one half.

    Args:
        scores: ``(N,)`` scores (higher means "positive").
        labels: ``(N,)`` 0/1 (or bool) truth.

    Returns:
        The AUROC in ``[0, 1]``, or ``None`` when there is no positive or no negative.

    Raises:
        ValueError: ``scores`` and ``labels`` differ in length.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    num_pos = int(labels.sum())
    num_neg = len(labels) - num_pos
    if num_pos == 0 or num_neg == 0:
        return None
    rank_sum = float(average_ranks(scores)[labels].sum())
    return (rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin ``[lower, upper)`` (the last one includes 1).

    Attributes:
        lower / upper: the bin's edges.
        count: confidences that fell in it.
        confidence: their mean (``None`` for an empty bin).
        accuracy: the fraction of them labelled 1 (``None`` for an empty bin).
    """

    lower: float
    upper: float
    count: int
    confidence: float | None
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (values rounded to 4 decimals)."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {
            "lower": r(self.lower),
            "upper": r(self.upper),
            "count": self.count,
            "confidence": r(self.confidence),
            "accuracy": r(self.accuracy),
        }


def bin_index(confidences: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """The bin of each confidence: ``floor(c * num_bins)``, with 1 in the last bin."""
    c = np.clip(np.asarray(confidences, dtype=np.float64), 0.0, 1.0)
    return np.minimum((c * num_bins).astype(np.int64), num_bins - 1)


def reliability_bins(
    confidences: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    num_bins: int = NUM_BINS,
) -> list[ReliabilityBin]:
    """Equal-width confidence bins with their counts, mean confidences and accuracies.

    Args:
        confidences: ``(N,)`` predicted probabilities (clipped to ``[0, 1]``).
        labels: ``(N,)`` 0/1 outcomes.
        num_bins: bins over ``[0, 1]``.

    Returns:
        ``num_bins`` bins, lowest first.

    Raises:
        ValueError: lengths differ, or ``num_bins < 1``.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    c = np.clip(np.asarray(confidences, dtype=np.float64).reshape(-1), 0.0, 1.0)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if c.shape != y.shape:
        raise ValueError(f"{len(c)} confidences but {len(y)} labels")
    index = bin_index(c, num_bins)
    bins = []
    for b in range(num_bins):
        inside = index == b
        count = int(inside.sum())
        bins.append(
            ReliabilityBin(
                lower=b / num_bins,
                upper=(b + 1) / num_bins,
                count=count,
                confidence=float(c[inside].mean()) if count else None,
                accuracy=float(y[inside].mean()) if count else None,
            )
        )
    return bins


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    num_bins: int = NUM_BINS,
) -> float | None:
    """ECE: ``sum_b (n_b / N) * |accuracy_b - confidence_b|`` over equal-width bins.

    Returns:
        The ECE in ``[0, 1]``, or ``None`` without any confidence.
    """
    bins = reliability_bins(confidences, labels, num_bins=num_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return None
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in bins if b.count) / total)
