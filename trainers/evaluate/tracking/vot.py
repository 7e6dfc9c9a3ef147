"""VOT's supervised scores: accuracy, robustness, failures and EAO, as PySOT computes them.

Inputs are per-frame region overlaps (:mod:`.region`) of each run of a tracker on each
sequence, NaN on the marker frames (``1`` initialised, ``2`` failed, ``0`` skipped).

* **Accuracy**: overlaps over the image bounds ``(width, height)``, with the frame of each
  initialisation and the 9 following ones ignored (burn-in 10); per sequence the mean over
  runs frame by frame, then the NaN-mean over all frames of all sequences pooled.
* **Failures** (lost number): failures summed over sequences, mean over runs;
  **robustness** as PySOT prints it: failures / total frames x 100.
* **EAO** (expected average overlap): overlaps over the bounds ``(width - 1, height - 1)``
  with no burn-in; each run is cut at ``failure + 5`` (the re-initialisation frame) into
  fragments; a fragment ending in a failure is padded with zeros (the tracker is lost), the
  last one with NaN; the expected overlap at length ``L`` is the weighted mean over
  fragments reaching ``L`` of their mean overlap on frames ``1 .. L - 1``, each fragment
  weighted by its share of frames carrying the tag (``all``: every frame); EAO averages
  it over the benchmark's interval ``[low, high]``. PySOT's quirks are kept: the weight of
  a fragment is divided by ``1 + 1e-10`` runs of the last sequence, and expected overlaps
  are stored as float32.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from trainers.evaluate.tracking.region import FAILURE, INIT, Regions

BURNIN = 10
SKIPPING = 5


@dataclass(frozen=True)
class RunOverlaps:
    """One run of a tracker on one sequence.

    Attributes:
        sequence: sequence name.
        pred: the run's regions (with markers).
        overlaps_wh: ``(L,)`` overlaps with bounds ``(width, height)``, ``L`` the shorter of
            the run and the ground truth.
        overlaps_eao: ``(L,)`` overlaps with bounds ``(width - 1, height - 1)``.
        length: frames of the sequence.
        tags: per-frame tags of the sequence (``(length,)`` 0/1 each).
    """

    sequence: str
    pred: Regions
    overlaps_wh: np.ndarray
    overlaps_eao: np.ndarray
    length: int
    tags: Mapping[str, np.ndarray]

    @property
    def failures(self) -> np.ndarray:
        """Frame indices of the failures."""
        return np.flatnonzero(self.pred.special(FAILURE))


def accuracy_overlaps(run: RunOverlaps, burnin: int = BURNIN) -> np.ndarray:
    """The run's overlaps with each initialisation's burn-in frames set to NaN."""
    out = run.overlaps_wh.copy()
    for start in np.flatnonzero(run.pred.special(INIT)):
        out[start : start + burnin] = np.nan
    return out


@dataclass(frozen=True)
class ARScores:
    """Accuracy and robustness of one tracker.

    Attributes:
        accuracy: pooled mean overlap.
        robustness: failures per 100 frames (PySOT's figure).
        failures: failures summed over sequences, mean over runs (lost number).
        per_sequence: sequence -> ``(accuracy, mean failures)``.
    """

    accuracy: float
    robustness: float
    failures: float
    per_sequence: dict[str, tuple[float, float]]


def accuracy_robustness(runs: Mapping[str, Sequence[RunOverlaps]]) -> ARScores:
    """PySOT's ``AccuracyRobustnessBenchmark`` over ``sequence -> runs`` (sorted names).

    Raises:
        ValueError: sequences with different numbers of runs.
    """
    overlaps: list[np.ndarray] = []
    failures: list[list[int]] = []
    per_sequence = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for name, seq_runs in runs.items():
            mean = np.nanmean([accuracy_overlaps(r) for r in seq_runs], axis=0)
            overlaps.append(mean)
            counts = [len(r.failures) for r in seq_runs]
            failures.append(counts)
            per_sequence[name] = (float(np.nanmean(mean)), float(np.mean(counts)))
        pooled = np.concatenate(overlaps) if overlaps else np.zeros(0)
        accuracy = float(np.nanmean(pooled)) if pooled.size else float("nan")
    if len({len(f) for f in failures}) > 1:
        raise ValueError("every sequence needs the same number of runs")
    length = sum(len(o) for o in overlaps)
    totals = np.sum(np.array(failures, np.float64), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        robustness = float(np.mean(totals / length) * 100)
    return ARScores(accuracy, robustness, float(np.mean(totals)), per_sequence)


def expected_overlaps(fragments: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected overlap at each length: ``(max_len,)`` float32, 1 at length 1.

    Args:
        fragments: ``(F, max_len)`` overlaps, NaN past a fragment's end.
        weights: ``(F,)`` fragment weights.
    """
    max_len = fragments.shape[1]
    out = np.zeros(max_len, np.float32)
    out[0] = 1
    if max_len < 2:
        return out
    body = fragments[:, 1:]
    present = ~np.isnan(body)  # fragment reaches length i + 2
    means = np.cumsum(body, axis=1) / np.arange(1, max_len)  # NaN inside propagates
    with np.errstate(invalid="ignore"):
        num = np.where(present, means * weights[:, None], 0.0).sum(0)
        den = np.where(present, weights[:, None], 0.0).sum(0)
        value = num / den
    any_present = present.any(0)
    out[1:] = np.where(any_present, value, 0.0).astype(np.float32)
    return out


def eao_curve(
    runs: Mapping[str, Sequence[RunOverlaps]], tag: str, *, skipping: int = SKIPPING
) -> np.ndarray:
    """Expected overlap curve for frames carrying ``tag`` (``"all"``: every frame)."""
    flat = [r for seq_runs in runs.values() for r in seq_runs]
    if not flat:
        return np.zeros(0, np.float32)
    last_runs = len(list(runs.values())[-1])
    seq_weight = 1 / (last_runs + 1e-10)
    max_len = max(len(r.overlaps_eao) for r in flat)
    count = sum(len(r.failures) + 1 for r in flat)
    fragments = np.full((count, max_len), np.nan)
    weights = np.full(count, np.nan)
    row = 0
    for run in flat:
        overlaps = run.overlaps_eao
        n = len(overlaps)
        # (a tag the sequence has no file for is on no frame)
        tags = np.ones(run.length) if tag == "all" else run.tags.get(tag, np.zeros(run.length))
        fails = run.failures
        if len(fails) == 0:
            fragments[row, :n] = overlaps
            weights[row] = seq_weight * (tags[:n].sum() / n)
            row += 1
            continue
        points = [0] + [int(f) + skipping for f in fails if f + skipping <= n]
        for i, start in enumerate(points):
            last = i == len(points) - 1
            stop = n if last else points[i + 1] + 1
            piece = np.nan_to_num(overlaps[start:stop], nan=0.0)
            if not last:
                fragments[row, :] = 0
            fragments[row, : len(piece)] = piece
            span = (run.length - start + 1e-16) if last else (stop - start)
            weights[row] = seq_weight * (tags[start:stop].sum() / span)
            row += 1
    return expected_overlaps(fragments, weights)


def eao_score(curve: np.ndarray, interval: tuple[int, int]) -> float:
    """Mean expected overlap over sequence lengths ``low .. high`` (those computed)."""
    low, high = interval
    weight = np.zeros(len(curve))
    weight[low - 1 : high] = 1
    valid = ~np.isnan(curve)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(curve[valid] * weight[valid]) / np.sum(weight[valid]))
