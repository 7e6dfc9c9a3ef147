"""One-pass evaluation (OTB, UAV123, LaSOT, GOT-10k): success, precision, AO.

Per sequence, as PySOT's ``OPEBenchmark`` computes them (boxes ``x, y, w, h``):

* **success curve**: the fraction of frames whose box IoU exceeds each threshold of
  ``0, 0.05, ..., 1`` (21 values); frames whose true box has no positive width and height
  count as misses; the **AUC** of a tracker is the mean of all its sequences' curves;
* **precision curve**: the fraction of frames whose centre (``x + (w - 1) / 2``) lies
  within ``0 .. 50`` pixels of the truth's; frames whose true centre is not positive in
  both coordinates count as hits (PySOT's toolkit marks them with distance -1); the
  **precision** is the sequence mean at 20 px;
* **normalised precision** (LaSOT): the same with both centres divided by the true box
  size, thresholds ``0 .. 0.5`` by 0.01, reported at 0.2;
* LaSOT scores only the frames where the target is visible, over all frames' count.

GOT-10k's **AO** and **SR** follow the GOT-10k toolkit: boxes clipped to the image, IoU of
every frame but the first whose target is visible (cover > 0), pooled over all sequences;
AO is their mean, SR0.5 / SR0.75 the fraction above 0.5 / 0.75 (a NaN box scores 0 here,
where the GOT-10k toolkit's mean would turn NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUCCESS_THRESHOLDS = np.arange(0, 1.05, 0.05)
PRECISION_THRESHOLDS = np.arange(0, 51, 1)
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, 1) / 100
#: Index of 20 px (precision) and 0.2 (normalised precision) in the threshold arrays.
REPORT_INDEX = 20
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class OPECurves:
    """One sequence's curves.

    Attributes:
        success: ``(21,)`` over :data:`SUCCESS_THRESHOLDS`.
        precision: ``(51,)`` over :data:`PRECISION_THRESHOLDS`.
        norm_precision: ``(51,)`` over :data:`NORM_PRECISION_THRESHOLDS`.
    """

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray


def overlap_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``x, y, w, h`` boxes ``a[i]`` and ``b[i]`` (``(N, 4)`` each), in ``[0, 1]``;
    NaN where undefined."""
    left = np.maximum(a[:, 0], b[:, 0])
    right = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    top = np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(0, right - left) * np.maximum(0, bottom - top)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.maximum(np.minimum(1, iou), 0)


def centers(boxes: np.ndarray) -> np.ndarray:
    """``(N, 2)`` box centres ``x + (w - 1) / 2, y + (h - 1) / 2``."""
    return np.stack([boxes[:, 0] + (boxes[:, 2] - 1) / 2, boxes[:, 1] + (boxes[:, 3] - 1) / 2], 1)


def _curve(values: np.ndarray, thresholds: np.ndarray, n_frame: int, *, above: bool) -> np.ndarray:
    if above:
        hits = (values[None, :] > thresholds[:, None]).sum(1)
    else:
        hits = (values[None, :] <= thresholds[:, None]).sum(1)
    return hits / float(n_frame)


def success_curve(gt: np.ndarray, pred: np.ndarray, n_frame: int) -> np.ndarray:
    """``(21,)`` success rates; frames without a positive true size score -1 (a miss)."""
    iou = np.full(len(gt), -1.0)
    with np.errstate(invalid="ignore"):
        valid = np.sum(gt[:, 2:] > 0, axis=1) == 2
    iou[valid] = overlap_ratio(gt[valid], pred[valid])
    return _curve(iou, SUCCESS_THRESHOLDS, n_frame, above=True)


def distance_curve(
    gt_center: np.ndarray, pred_center: np.ndarray, thresholds: np.ndarray, *, n_frame: int
) -> np.ndarray:
    """Fraction of frames within each distance threshold; frames whose true centre is not
    positive score distance -1 (a hit)."""
    dist = np.full(len(gt_center), -1.0)
    with np.errstate(invalid="ignore"):
        valid = np.sum(gt_center > 0, axis=1) == 2
    dist[valid] = np.sqrt(np.sum(np.power(gt_center[valid] - pred_center[valid], 2), axis=1))
    return _curve(dist, thresholds, n_frame, above=False)


def sequence_curves(
    gt: np.ndarray, pred: np.ndarray, visible: np.ndarray | None = None
) -> OPECurves:
    """Success, precision and normalised precision curves of one sequence.

    Args:
        gt: ``(N, 4)`` true boxes.
        pred: ``(N, 4)`` predicted boxes.
        visible: ``(N,)`` bool; when given, only visible frames are scored (LaSOT).
    """
    n_frame = len(gt)
    if visible is not None:
        gt, pred = gt[visible], pred[visible]
    gt_c, pred_c = centers(gt), centers(pred)
    size = gt[:, 2:4] + 1e-16
    return OPECurves(
        success=success_curve(gt, pred, n_frame),
        precision=distance_curve(gt_c, pred_c, PRECISION_THRESHOLDS, n_frame=n_frame),
        norm_precision=distance_curve(
            gt_c / size, pred_c / size, NORM_PRECISION_THRESHOLDS, n_frame=n_frame
        ),
    )


def clipped_iou(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The GOT-10k toolkit's IoU: both ``x, y, w, h`` boxes clipped to the image
    ``(width, height)`` first, ``eps`` added to the union."""
    out = []
    for boxes in (a.copy(), b.copy()):
        boxes[:, 0] = np.clip(boxes[:, 0], 0, size[0])
        boxes[:, 1] = np.clip(boxes[:, 1], 0, size[1])
        boxes[:, 2] = np.clip(boxes[:, 2], 0, size[0] - boxes[:, 0])
        boxes[:, 3] = np.clip(boxes[:, 3], 0, size[1] - boxes[:, 1])
        out.append(boxes)
    a, b = out
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def got10k_ious(
    gt: np.ndarray, pred: np.ndarray, *, size: tuple[int, int], visible: np.ndarray | None
) -> np.ndarray:
    """IoUs GOT-10k scores on one sequence: every frame but the first, where visible."""
    ious = clipped_iou(pred[1:], gt[1:], size)
    with np.errstate(invalid="ignore"):
        ious = np.where(np.isnan(ious), 0.0, ious)
    if visible is not None:
        ious = ious[visible[1:]]
    return ious


@dataclass(frozen=True)
class GOT10kScores:
    """Pooled GOT-10k scores: ``ao``, ``sr50``, ``sr75`` and the ``(101,)`` success curve."""

    ao: float
    sr50: float
    sr75: float
    curve: np.ndarray


def got10k_scores(ious: np.ndarray) -> GOT10kScores:
    """AO, SR0.5, SR0.75 and the success curve of pooled IoUs (NaN when empty)."""
    if ious.size == 0:
        nan = float("nan")
        return GOT10kScores(nan, nan, nan, np.full(len(GOT10K_THRESHOLDS), np.nan))
    curve = np.mean(ious[:, None] > GOT10K_THRESHOLDS[None, :], axis=0)
    return GOT10kScores(
        float(np.mean(ious)), float(np.mean(ious > 0.5)), float(np.mean(ious > 0.75)), curve
    )
