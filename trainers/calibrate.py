"""Fit the match-mode calibration of a recipe with a geometric stage on a labelled split.

Every trial of the split (a real-photo set, :mod:`trainers.evaluate.real_set`) is asked
once; every fused candidate (:meth:`matcher.siamese_matcher.SiameseMatcher.scored_candidates`)
becomes a sample, labelled 1 when its box overlaps a true instance of the reference by
IoU >= 0.5 (never in an absent trial). A logistic regression on the evidence
(:func:`matcher.inference.fusion.fit_calibration`) is the calibration; it is written as
JSON with what it was fitted on and its expected calibration error on the top candidate
of each trial, before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.images import load_image
from matcher.inference.evidence import iou_matrix
from matcher.inference.fusion import FEATURES, Calibration, fit_calibration
from trainers.evaluate.calibration import expected_calibration_error
from trainers.evaluate.real_protocol import (
    SUCCESS_IOU,
    load_real_document,
    load_references,
    real_trials,
)


@dataclass(frozen=True)
class Samples:
    """Labelled candidates of one split.

    Attributes:
        x: ``(N, F)`` evidence, columns ``features``.
        y: ``(N,)`` labels.
        trial: ``(N,)`` index of each sample's trial.
        rank: ``(N,)`` rank of the candidate in its trial (0: most probable before
            calibration).
        features: the evidence the matcher gathers, in
            :data:`~matcher.inference.fusion.FEATURES` order (``template`` only with a
            template-matching stage).
    """

    x: np.ndarray
    y: np.ndarray
    trial: np.ndarray
    rank: np.ndarray
    features: tuple[str, ...] = FEATURES


def collect_samples(matcher: Any, root: Path, *, split: str, progress: bool = False) -> Samples:
    """Ask ``matcher`` every trial of ``split`` and label its candidates.

    Raises:
        InvalidArgumentError: not a real-photo set, or no trial in ``split``.
    """
    from tqdm import tqdm

    root = Path(root)
    trials = real_trials(load_real_document(root), split)
    references = load_references(trials, root)
    encoded = {rid: matcher.encode_reference(ref) for rid, ref in references.items()}
    xs, ys, owner, ranks = [], [], [], []
    features: tuple[str, ...] | None = None
    for index, trial in enumerate(tqdm(trials, desc=f"calibrate {split}", disable=not progress)):
        scene = load_image(root / trial.file_name)
        cands = matcher.scored_candidates(encoded[trial.reference_id], scene)
        for rank, c in enumerate(cands):
            if features is None:
                features = tuple(f for f in FEATURES if f in c.evidence)
            hit = (
                trial.present and float(iou_matrix([c.box], trial.gt_boxes)[0].max()) >= SUCCESS_IOU
            )
            xs.append([c.evidence[f] for f in features])
            ys.append(1.0 if hit else 0.0)
            owner.append(index)
            ranks.append(rank)
    features = features or FEATURES
    return Samples(
        x=np.array(xs, np.float64).reshape(-1, len(features)),
        y=np.array(ys, np.float64),
        trial=np.array(owner, np.int64),
        rank=np.array(ranks, np.int64),
        features=features,
    )


def top_per_trial(samples: Samples, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each trial with candidates, the highest probability and its label."""
    tops, labels = [], []
    for t in np.unique(samples.trial):
        sel = np.flatnonzero(samples.trial == t)
        best = sel[int(np.argmax(prob[sel]))]
        tops.append(prob[best])
        labels.append(samples.y[best])
    return np.array(tops), np.array(labels)


def fit_split(samples: Samples, *, meta: dict[str, Any], l2: float = 1e-2) -> Calibration:
    """Fit the calibration on ``samples``; ``meta`` gains the counts and the trial-level
    ECE of the fitted probabilities."""
    cal = fit_calibration(samples.x, samples.y, features=samples.features, l2=l2)
    prob = cal.probability(samples.x)
    top, label = top_per_trial(samples, prob)
    info = dict(meta)
    info.update(
        samples=len(samples.y),
        positives=int(samples.y.sum()),
        trials=len(np.unique(samples.trial)),
        ece_top_fitted=round(expected_calibration_error(top, label) or 0.0, 4),
    )
    return Calibration(cal.features, cal.weights, cal.bias, cal.mean, cal.scale, info)
