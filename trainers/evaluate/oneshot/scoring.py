"""COCO scoring of one-shot detections with pycocotools.

``COCOeval`` runs on the detections of one run and one category group, its parameters
restricted to the group's categories (``params.catIds``) and evaluated images
(``params.imgIds``). The protocol's AP50 and AP are ``summarize()``'s ``stats[1]`` and
``stats[0]``: the mean of the precision array at area ``all`` and 100 detections over the
categories with ground truth (IoU 0.5, or the ten IoUs 0.50:0.95). They are read from
``eval["precision"]`` directly (the same numbers, without pycocotools' printing), which
also gives the per-category APs. The operating point, recall and precision at IoU 0.5 of
the detections scoring at least a threshold, comes from the per-image matches
(``evalImgs``), so crowd regions are ignored exactly as in AP.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

import numpy as np

IOU_TYPES = ("bbox", "segm")


@dataclass(frozen=True)
class CocoScores:
    """AP of one run and one category group.

    Attributes:
        ap50: mean AP at IoU 0.5 over categories with ground truth (``None`` if none has).
        ap: mean AP over IoU 0.50:0.95 (same categories).
        per_category: category id -> ``(ap50, ap)``, for categories with ground truth.
        num_gt: non-ignored ground-truth instances.
        num_tp: detections scoring at least the threshold that match one at IoU 0.5.
        num_det: non-ignored detections scoring at least the threshold.
    """

    ap50: float | None
    ap: float | None
    per_category: dict[int, tuple[float, float]]
    num_gt: int
    num_tp: int
    num_det: int

    @property
    def recall50(self) -> float | None:
        """Recall at IoU 0.5 of the detections at or above the threshold."""
        return self.num_tp / self.num_gt if self.num_gt else None

    @property
    def precision50(self) -> float | None:
        """Precision at IoU 0.5 of the detections at or above the threshold."""
        return self.num_tp / self.num_det if self.num_det else None


def ground_truth_without(coco: Any, pairs: Iterable[tuple[int, int]]) -> Any:
    """A copy of a pycocotools ``COCO`` without the annotations of some (image, category) pairs.

    Args:
        coco: the ground truth.
        pairs: ``(image_id, category_id)`` pairs whose annotations are removed.

    Returns:
        A new ``COCO`` (the input is left unchanged); ``coco`` itself when ``pairs`` is empty.
    """
    from pycocotools.coco import COCO

    drop = set(pairs)
    if not drop:
        return coco
    out = COCO()
    out.dataset = {
        **coco.dataset,
        "annotations": [
            a for a in coco.dataset["annotations"] if (a["image_id"], a["category_id"]) not in drop
        ],
    }
    with redirect_stdout(io.StringIO()):
        out.createIndex()
    return out


def load_results(gt: Any, results: Sequence[dict[str, Any]]) -> Any:
    """``gt.loadRes(results)``, also for an empty list; ``results`` are not modified.

    ``loadRes`` and ``COCOeval`` only set top-level keys of each record (``id``, ``area``,
    ``segmentation``), so shallow copies protect the caller's records.
    """
    from pycocotools.coco import COCO

    with redirect_stdout(io.StringIO()):
        if results:
            return gt.loadRes([dict(r) for r in results])
        res = COCO()
        res.dataset = {
            "images": list(gt.dataset["images"]),
            "categories": copy.deepcopy(gt.dataset["categories"]),
            "annotations": [],
        }
        res.createIndex()
        return res


def score_results(
    gt: Any,
    results: Sequence[dict[str, Any]],
    *,
    iou_type: str,
    category_ids: Sequence[int],
    image_ids: Sequence[int],
    threshold: float = 0.5,
) -> CocoScores:
    """AP50, AP, per-category AP and the operating point of COCO results.

    Args:
        gt: pycocotools ``COCO`` ground truth.
        results: COCO results (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``,
            ``score``, and ``segmentation`` RLE for ``"segm"``).
        iou_type: ``"bbox"`` or ``"segm"``.
        category_ids: the categories averaged over.
        image_ids: the evaluated images.
        threshold: score of the operating point.

    Returns:
        The scores.
    """
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    dt = load_results(gt, results)
    evaluator = COCOeval(gt, dt, iou_type)
    evaluator.params.catIds = list(category_ids)
    evaluator.params.imgIds = list(image_ids)
    with redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    params = evaluator.params
    if not np.isclose(params.iouThrs[0], 0.5):  # pragma: no cover - pycocotools invariant
        raise RuntimeError("COCOeval's first IoU threshold is not 0.5")
    area = params.areaRngLbl.index("all")
    precision = evaluator.eval["precision"][:, :, :, area, -1]  # (T, R, K)
    per_category: dict[int, tuple[float, float]] = {}
    for k, cat in enumerate(params.catIds):
        p = precision[:, :, k]
        if (p > -1).any():
            per_category[int(cat)] = (float(np.mean(p[0][p[0] > -1])), float(np.mean(p[p > -1])))
    num_gt, num_tp, num_det = _operating_point(evaluator, threshold)
    if per_category:
        ap50 = float(np.mean([v[0] for v in per_category.values()]))
        ap = float(np.mean([v[1] for v in per_category.values()]))
    else:
        ap50 = ap = None
    return CocoScores(ap50, ap, per_category, num_gt, num_tp, num_det)


def _operating_point(evaluator: Any, threshold: float) -> tuple[int, int, int]:
    params = evaluator.params
    all_range = params.areaRng[params.areaRngLbl.index("all")]
    num_gt = num_tp = num_det = 0
    for e in evaluator.evalImgs:
        if e is None or list(e["aRng"]) != list(all_range):
            continue
        num_gt += int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
        scores = np.asarray(e["dtScores"], dtype=np.float64)
        if scores.size == 0:
            continue
        kept = (scores >= threshold) & ~np.asarray(e["dtIgnore"][0], dtype=bool)
        matched = np.asarray(e["dtMatches"][0]) > 0
        num_det += int(kept.sum())
        num_tp += int((kept & matched).sum())
    return num_gt, num_tp, num_det
