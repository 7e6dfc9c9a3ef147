"""Localisation metrics of validation (``xyxy`` boxes; the tracking benchmarks' own,
PySOT-exact versions are in :mod:`trainers.evaluate.tracking.ope`).

* IoU of predicted and true boxes (xyxy);
* the OTB-style success curve — the fraction of predictions whose IoU exceeds each
  threshold in ``0, 0.05, ..., 1`` — and its area (AUC, the mean of the curve);
* precision — the fraction whose centre lies within ``20`` pixels of the truth.
"""

from __future__ import annotations

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)


def box_iou_pairs(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU of ``pred[i]`` with ``true[i]``; both ``(N, 4)`` xyxy. Returns ``(N,)``."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    true = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(pred[:, 2], true[:, 2]) - np.maximum(pred[:, 0], true[:, 0]), 0, None)
    iy = np.clip(np.minimum(pred[:, 3], true[:, 3]) - np.maximum(pred[:, 1], true[:, 1]), 0, None)
    inter = ix * iy
    area_p = np.clip(pred[:, 2] - pred[:, 0], 0, None) * np.clip(pred[:, 3] - pred[:, 1], 0, None)
    area_t = np.clip(true[:, 2] - true[:, 0], 0, None) * np.clip(true[:, 3] - true[:, 1], 0, None)
    union = area_p + area_t - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def success_curve(ious: np.ndarray) -> np.ndarray:
    """Fraction of IoUs strictly above each of :data:`SUCCESS_THRESHOLDS`."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return np.zeros_like(SUCCESS_THRESHOLDS)
    return (ious[None, :] > SUCCESS_THRESHOLDS[:, None]).mean(axis=1)


def success_auc(ious: np.ndarray) -> float:
    """Area under the success curve (its mean over the thresholds)."""
    return float(success_curve(ious).mean())


def precision(pred: np.ndarray, true: np.ndarray, *, threshold: float = 20.0) -> float:
    """Fraction of predictions whose centre is within ``threshold`` pixels of the truth."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    true = np.asarray(true, dtype=np.float64).reshape(-1, 4)
    if len(pred) == 0:
        return 0.0
    dc = (pred[:, :2] + pred[:, 2:]) / 2 - (true[:, :2] + true[:, 2:]) / 2
    return float((np.linalg.norm(dc, axis=1) <= threshold).mean())
