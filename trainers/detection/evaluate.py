"""Held-out scoring of detection episodes: AP50 of boxes and masks (pycocotools) and the
mean IoU of the best detection.

Every episode is scored as its own image, as in the Siamese Mask R-CNN protocol: the
reference's category is known to be present, its instances in the scene are the ground
truth and every detection is labelled with that category. COCOeval then averages the
precision over the categories (``stats[1]``: IoU 0.5, all areas, 100 detections). The
mean IoU is, per episode, the IoU of the top-scoring detection with the instance it
overlaps most (0 without detections), the detection counterpart of the pair families'
``val_mean_iou``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn
from torchvision.ops import box_iou

from matcher.mask_codec import encode_rle
from matcher.models.siam_mask_rcnn import paste_masks

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_episodes(
    net: nn.Module,
    batches: Iterable[dict[str, Any]],
    device: torch.device,
    *,
    mask_threshold: float,
) -> dict[str, float]:
    """Run ``net`` (a :class:`~matcher.models.siam_mask_rcnn.SiamMaskRCNN`) on held-out
    episode batches (:func:`trainers.detection.targets.collate_episodes`) and score it.

    Args:
        net: the network; it is put in eval mode.
        batches: collated episode batches (any device).
        device: where the network runs.
        mask_threshold: mask probability above which a pixel belongs to an instance.

    Returns:
        ``val_ap50`` (boxes), ``val_mask_ap50``, ``val_mean_iou``, and
        ``val_detections`` (mean detections per episode).
    """
    net.eval()
    images, truths, found, ious = [], [], [], []
    for batch in batches:
        scenes = [s.to(device).float() / 255.0 for s in batch["scenes"]]
        references = batch["references"].to(device).float() / 255.0
        detections = net(scenes, references)
        for b, dets in enumerate(detections):
            episode = len(images)
            target = batch["targets"][b]
            category = int(batch["categories"][b])
            height, width = scenes[b].shape[-2:]
            images.append({"id": episode, "height": int(height), "width": int(width)})
            gt_boxes = target["boxes"].float().cpu()
            for box, mask in zip(gt_boxes, target["masks"].cpu().numpy(), strict=True):
                truths.append(_record(episode, category, box, mask) | {"iscrowd": 0})
            boxes = dets["boxes"].float()
            probs = paste_masks(dets["masks"].float(), boxes, (int(height), int(width)))
            binary = (probs > mask_threshold).cpu().numpy()
            for box, score, mask in zip(boxes.cpu(), dets["scores"].cpu(), binary, strict=True):
                found.append(_record(episode, category, box, mask) | {"score": float(score)})
            best = box_iou(boxes[:1].cpu(), gt_boxes).max() if len(boxes) else torch.tensor(0.0)
            ious.append(float(best))
    categories = sorted({t["category_id"] for t in truths})
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": [t | {"id": i + 1} for i, t in enumerate(truths)],
        "categories": [{"id": c} for c in categories],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return {
        "val_ap50": _ap50(gt, found, "bbox"),
        "val_mask_ap50": _ap50(gt, found, "segm"),
        "val_mean_iou": float(np.mean(ious)) if ious else 0.0,
        "val_detections": len(found) / max(len(images), 1),
    }


def _record(episode: int, category: int, box: torch.Tensor, mask: np.ndarray) -> dict[str, Any]:
    x0, y0, x1, y1 = (float(v) for v in box)
    rle = encode_rle(mask.astype(bool))
    return {
        "image_id": episode,
        "category_id": category,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": float(mask.sum()) or (x1 - x0) * (y1 - y0),
        "segmentation": {"size": rle["size"], "counts": rle["counts"].encode()},
    }


def _ap50(gt: COCO, detections: list[dict[str, Any]], kind: str) -> float:
    """COCOeval AP at IoU 0.5 (all areas, 100 detections); 0 without any detection."""
    if not detections or not gt.dataset["annotations"]:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        results = gt.loadRes(detections)
        evaluator = COCOeval(gt, results, kind)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(float(evaluator.stats[1]), 0.0)
