"""One calibrated score: P(this instance is the reference) from every kind of evidence.

Match mode gathers, for each candidate box, evidence of five kinds:

- ``siamese``: the Siamese search's score of the box (the best score among the search's
  boxes overlapping it by IoU >= 0.5, for a box proposed by the geometric or the
  template-matching stage);
- ``similarity``: the embedder's cosine similarity of the box's square to the
  reference's (:mod:`matcher.inference.verify`; 0 without an embedder);
- ``log_inliers``, ``inlier_ratio``, ``spread``: the geometric stage's evidence
  (:mod:`matcher.inference.geometric`), ``log(1 + inliers)``;
- ``colour``: similarity of the hue-saturation histograms of the reference and of the box
  (1 - Bhattacharyya distance), which separates look-alikes that differ only in colour;
- ``template``: how far the best normalised cross-correlation of the reference resized
  to the box with the box's neighbourhood exceeds 0.5, rescaled to ``[0, 1]``
  (:mod:`matcher.inference.ncc`), which holds where local features find nothing (little
  texture, blur, an unwarped view); only with the template-matching stage
  (``inference.match.template``).

A :class:`Calibration` maps the vector to a probability with a logistic regression,
``sigmoid(w . (x - mean) / scale + b)``, fitted on labelled candidates of a validation
split (:func:`fit_calibration`: label 1 when the candidate's box overlaps a true instance
of the reference by IoU >= 0.5). It is stored as JSON beside the recipe's weights and
named by ``inference.match.calibration``. The file lists the features it was fitted on
by name, so a calibration fitted before a kind of evidence existed (one without
``template``) still loads and scores the features it knows. Without one, the fallback is
the noisy OR of the verified appearance score and the geometric score (documented,
monotone, but not a probability).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from matcher.checkpoints.shipped import SHIPPED_WEIGHTS_DIR, is_shipped_name
from matcher.errors import CheckpointError
from matcher.files import atomic_write
from matcher.images import box_crop

FEATURES = (
    "siamese",
    "similarity",
    "log_inliers",
    "inlier_ratio",
    "spread",
    "colour",
    "template",
)
_FORMAT = "siammatch-calibration"


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic calibration of the evidence vector.

    Attributes:
        features: names of the vector's entries (a subset of :data:`FEATURES`, in order).
        weights / bias: the logistic model on standardised features.
        mean / scale: standardisation of each feature.
        meta: how it was fitted (set, split, counts, figures).
    """

    features: tuple[str, ...]
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """``(N,)`` probabilities of ``(N, len(features))`` evidence vectors."""
        x = np.asarray(x, np.float64).reshape(-1, len(self.features))
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": 1,
            "features": list(self.features),
            "weights": [float(v) for v in self.weights],
            "bias": float(self.bias),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        """Write the JSON file atomically."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a file written by :meth:`save`.

        Raises:
            CheckpointError: unreadable, not a calibration file, or inconsistent.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"calibration {path}: cannot read it ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise CheckpointError(f"calibration {path}: not a {_FORMAT} file")
        try:
            features = tuple(str(f) for f in doc["features"])
            arrays = [np.asarray(doc[k], np.float64) for k in ("weights", "mean", "scale")]
            bias = float(doc["bias"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"calibration {path}: malformed ({exc})") from None
        unknown = [f for f in features if f not in FEATURES]
        if unknown or any(a.shape != (len(features),) for a in arrays):
            raise CheckpointError(
                f"calibration {path}: features {list(features)} do not match its arrays or "
                f"are unknown (known: {', '.join(FEATURES)})"
            )
        if not all(np.all(np.isfinite(a)) for a in arrays) or np.any(arrays[2] <= 0):
            raise CheckpointError(f"calibration {path}: non-finite weights or scales")
        return cls(features, arrays[0], bias, arrays[1], arrays[2], dict(doc.get("meta") or {}))


def resolve_calibration_path(name_or_path: str) -> Path:
    """The file a recipe's ``inference.match.calibration`` names: a bare name is
    ``weights/<name>.json``, anything else a path.

    Raises:
        CheckpointError: the file does not exist.
    """
    text = str(name_or_path)
    path = (
        SHIPPED_WEIGHTS_DIR / f"{text}.json" if is_shipped_name(text) else Path(text).expanduser()
    )
    if not path.is_file():
        raise CheckpointError(
            f"calibration {text!r}: {path} does not exist (set inference.match.calibration "
            "to a file written by `siammatch calibrate`, or to an empty string)"
        )
    return path


# -- evidence ---------------------------------------------------------------------------


def colour_histogram(image: np.ndarray, box: Sequence[float] | None = None) -> np.ndarray:
    """Normalised hue-saturation histogram (16 x 4 bins) of an RGB image or box; grey
    pixels (saturation < 24) fall in one extra bin per brightness third so grey products
    still have a colour signature."""
    if box is not None:
        image, _ = box_crop(image, box)
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    grey = hsv[:, 1] < 24
    hist = np.zeros(16 * 4 + 3, np.float64)
    coloured = hsv[~grey]
    if len(coloured):
        idx = (coloured[:, 0].astype(int) * 16 // 180) * 4 + np.minimum(
            (coloured[:, 1].astype(int) - 24) * 4 // 232, 3
        )
        hist[: 16 * 4] = np.bincount(idx, minlength=16 * 4)
    if grey.any():
        hist[16 * 4 :] = np.bincount(
            np.minimum(hsv[grey, 2].astype(int) * 3 // 256, 2), minlength=3
        )
    total = hist.sum()
    return hist / total if total else hist


def colour_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms, in ``[0, 1]``."""
    return float(np.clip(np.sum(np.sqrt(np.asarray(a) * np.asarray(b))), 0.0, 1.0))


def evidence_vector(
    *,
    siamese: float,
    similarity: float,
    inliers: int,
    inlier_ratio: float,
    spread: float,
    colour: float,
    template: float | None = None,
) -> dict[str, float]:
    """The named evidence of one candidate (see the module docstring); ``template`` is
    left out when ``None`` (no template-matching stage)."""
    evidence = {
        "siamese": float(np.clip(siamese, 0.0, 1.0)),
        "similarity": float(np.clip(similarity, -1.0, 1.0)),
        "log_inliers": math.log1p(max(int(inliers), 0)),
        "inlier_ratio": float(np.clip(inlier_ratio, 0.0, 1.0)),
        "spread": float(np.clip(spread, 0.0, 1.0)),
        "colour": float(np.clip(colour, 0.0, 1.0)),
    }
    if template is not None:
        evidence["template"] = float(np.clip(template, 0.0, 1.0))
    return evidence


def fallback_probability(evidence: dict[str, float], *, verifier_weight: float) -> float:
    """Score without a fitted calibration: noisy OR of the verified appearance score
    (``similarity ** w * siamese ** (1 - w)``) and the geometric score
    ``1 - exp(-(inliers - 4) / 8)`` (the SIFT baseline's)."""
    sim = max(evidence["similarity"], 0.0)
    appearance = sim**verifier_weight * evidence["siamese"] ** (1.0 - verifier_weight)
    inliers = math.expm1(evidence["log_inliers"])
    geometric = 1.0 - math.exp(-max(inliers - 4.0, 0.0) / 8.0)
    return float(1.0 - (1.0 - appearance) * (1.0 - geometric))


# -- fitting ----------------------------------------------------------------------------


def fit_calibration(
    x: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str] = FEATURES,
    l2: float = 1e-2,
    iterations: int = 100,
    meta: dict[str, Any] | None = None,
) -> Calibration:
    """Fit the logistic calibration by Newton's method (IRLS) with an L2 penalty.

    Args:
        x: ``(N, F)`` evidence vectors (columns in ``features`` order).
        y: ``(N,)`` labels, 1 for a correct instance.
        features: the columns' names.
        l2: penalty on the weights (not the bias), per sample.
        iterations: most Newton steps.
        meta: stored with the result.

    Raises:
        ValueError: fewer than two samples of either label, or mismatched shapes.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).ravel()
    if x.ndim != 2 or x.shape != (len(y), len(features)):
        raise ValueError(f"evidence of shape {x.shape} does not fit {len(y)} labels")
    if min(int(y.sum()), int((1 - y).sum())) < 2:
        raise ValueError("calibration needs at least two positive and two negative samples")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    theta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2 * len(y))
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ theta, -60, 60)))
        grad = z.T @ (p - y) + penalty * theta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return Calibration(
        features=tuple(features),
        weights=theta[:-1],
        bias=float(theta[-1]),
        mean=mean,
        scale=scale,
        meta=dict(meta or {}),
    )
