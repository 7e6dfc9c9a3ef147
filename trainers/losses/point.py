"""Losses of the point families: SiamFC (``siamfc``) and SiamFC++ (``siamfcpp``).

* SiamFC (siamfc-pytorch ``BalancedLoss``): BCE with logits on the response, class-balanced
  over the batch: the mean over positive cells and the mean over negative cells, averaged
  (a class absent from the batch drops out). Network output ``"response"`` ``(B, 1, S, S)``.
* SiamFC++ (video_analyst), outputs ``"cls"`` and ``"ctr"`` ``(B, 1, S, S)`` logits and
  ``"offsets"`` ``(B, 4, S, S)`` ``(l, t, r, b)`` distances in search pixels:

  * ``cls``: sigmoid focal loss (``focal_alpha``, ``focal_gamma``) summed over the cells
    not ignored, divided by ``max(#positives in the batch, 1)``;
  * ``ctr``: BCE with logits against the centre-ness target on cells where it is non-zero,
    minus the target's own entropy (so a perfect prediction scores 0), averaged over those
    cells;
  * ``loc``: the IoU loss ``-log(IoU)`` of the decoded box (cell centre -/+ offsets) and the
    gt box with the +1 pixel convention (``w = x1 - x0 + 1``), averaged over positive cells.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from matcher.errors import InvalidArgumentError
from matcher.inference.point_decoder import point_boxes
from matcher.train_config import TargetConfig
from trainers.losses.registry import LOSSES, LossWeights, masked_mean, require, with_total
from trainers.targets.geometry import TargetGeometry

_TINY = torch.finfo(torch.float32).tiny


def _labels(targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
    if "cls_label" not in targets:
        raise InvalidArgumentError(f"targets lack 'cls_label'; they have {sorted(targets)}")
    return targets["cls_label"]


@LOSSES.register("siamfc")
def balanced_logistic_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """SiamFC's class-balanced logistic loss.

    Args:
        outputs: ``"response"`` ``(B, 1, S, S)`` logits.
        targets: from :func:`trainers.targets.point.response_targets` (``-1`` labels, if
            any, are ignored).
        geometry / params: unused.
        weights: ``cls``.

    Returns:
        ``"cls"`` and ``"total" = weights.cls * cls``.

    Raises:
        InvalidArgumentError: missing or misshapen outputs or targets.
    """
    labels = _labels(targets)
    response = require(outputs, "response", tuple(labels.shape), what="outputs").float()
    bce = F.binary_cross_entropy_with_logits(response, (labels == 1).float(), reduction="none")
    pos, neg = labels == 1, labels == 0
    present = (pos.any().float() + neg.any().float()).clamp(min=1)
    cls = (masked_mean(bce, pos) + masked_mean(bce, neg)) / present
    return with_total({"cls": cls}, weights)


@LOSSES.register("siamfcpp")
def densebox_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """SiamFC++'s focal, centre-ness and IoU losses.

    Args:
        outputs: ``"cls"``, ``"ctr"``, ``"offsets"`` (module docstring).
        targets: from :func:`trainers.targets.point.densebox_targets`.
        geometry: ``offset`` and ``stride`` place the cells (boxes decoded with
            :func:`matcher.inference.point_decoder.point_boxes`).
        params: ``focal_alpha``, ``focal_gamma``.
        weights: ``cls``, ``ctr`` and ``loc`` (the IoU loss).

    Returns:
        ``"cls"``, ``"ctr"``, ``"loc"`` and their weighted ``"total"``.

    Raises:
        InvalidArgumentError: missing or misshapen outputs or targets.
    """
    labels = _labels(targets)
    b, _, h, w = labels.shape
    cls = require(outputs, "cls", (b, 1, h, w), what="outputs").float()
    ctr = require(outputs, "ctr", (b, 1, h, w), what="outputs").float()
    offsets = require(outputs, "offsets", (b, 4, h, w), what="outputs").float()
    ctr_target = require(targets, "ctr_target", (b, 1, h, w), what="targets").float()
    box_target = require(targets, "box_target", (b, 4), what="targets").float()

    pos = labels == 1
    focal = sigmoid_focal_loss(
        cls, pos.float(), alpha=params.focal_alpha, gamma=params.focal_gamma, reduction="none"
    )
    focal = torch.where(labels != -1, focal, torch.zeros_like(focal))
    cls_loss = focal.sum() / pos.sum().clamp(min=1)

    ctr_cells = ctr_target != 0
    entropy = -(torch.xlogy(ctr_target, ctr_target) + torch.xlogy(1 - ctr_target, 1 - ctr_target))
    ctr_bce = F.binary_cross_entropy_with_logits(ctr, ctr_target, reduction="none") - entropy
    ctr_loss = masked_mean(ctr_bce, ctr_cells)

    boxes = point_boxes(offsets, offset=geometry.offset, stride=geometry.stride)
    pos_flat = pos.reshape(b, h * w)
    pred = boxes[pos_flat]
    gt = box_target[:, None, :].expand(b, h * w, 4)[pos_flat]
    iou = iou_plus_one(pred, gt)
    loc_loss = -torch.log(iou.clamp(min=_TINY)).sum() / pos_flat.sum().clamp(min=1)
    return with_total({"cls": cls_loss, "ctr": ctr_loss, "loc": loc_loss}, weights)


def iou_plus_one(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of paired boxes with the inclusive-pixel convention (``w = x1 - x0 + 1``).

    Args:
        pred / gt: ``(P, 4)`` float32 xyxy.

    Returns:
        ``(P,)`` IoU in ``[0, 1]``.
    """
    area_p = (pred[:, 2] - pred[:, 0] + 1).abs() * (pred[:, 3] - pred[:, 1] + 1).abs()
    area_g = (gt[:, 2] - gt[:, 0] + 1).abs() * (gt[:, 3] - gt[:, 1] + 1).abs()
    iw = torch.minimum(pred[:, 2], gt[:, 2]) - torch.maximum(pred[:, 0], gt[:, 0]) + 1
    ih = torch.minimum(pred[:, 3], gt[:, 3]) - torch.maximum(pred[:, 1], gt[:, 1]) + 1
    inter = iw.clamp(min=0) * ih.clamp(min=0)
    return (inter / (area_p + area_g - inter)).clamp(min=0)
