"""Anchor targets of SiamRPN / SiamRPN++ (``siamrpn``) and SiamMask (``siammask``).

PySOT's ``AnchorTarget``, vectorised over the batch:

* positive pair: an anchor is positive when its IoU with the gt box exceeds ``pos_iou``
  (at most ``pos_num`` kept per pair, chosen at random), negative when the IoU is below
  ``neg_iou`` (at most ``total_num`` minus the positives kept, as SiamMask's
  ``AnchorTargetLayer``; PySOT keeps ``total_num - pos_num``), ignored otherwise;
* negative pair: no positives; only the anchors of cells within ``neg_radius`` cells
  (Chebyshev distance) of the cell nearest the (wrong) object's centre may be negatives,
  at most ``pos_num`` of them (PySOT's ``NEG_NUM``, equal to ``POS_NUM``). PySOT finds that
  cell as ``ceil(d + 0.5)``, which lands one cell past the nearest for whole ``d``; here it
  is the nearest cell;
* box deltas ``dx = (tcx - cx) / w``, ``dy = (tcy - cy) / h``, ``dw = log(tw / w)``,
  ``dh = log(th / h)`` against each positive anchor ``(cx, cy, w, h)``, with weight
  ``1 / num_pos`` of the pair.

SiamMask adds, for positive pairs with a mask, the cells holding positive anchors and the
gt mask inside each such cell's window (:mod:`trainers.targets.mask`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchvision.ops import box_iou

from matcher.train_config import TargetConfig
from trainers.targets.geometry import TargetGeometry, anchor_boxes
from trainers.targets.mask import crop_mask_windows
from trainers.targets.registry import TARGETS, check_batch
from trainers.targets.sampling import sample_capped


@TARGETS.register("siamrpn")
def rpn_targets(
    batch: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Anchor labels and box deltas.

    Args:
        batch: reads ``search_box`` and ``label``.
        geometry: needs ``anchor_shapes``.
        params: ``pos_iou``, ``neg_iou``, ``pos_num``, ``total_num``, ``neg_radius``.
        generator: source of the random subsampling.

    Returns:
        ``"cls_label"``: ``(B, A, S, S)`` int64, 1 positive, 0 negative, -1 ignored;
        ``"loc_target"``: ``(B, 4, A, S, S)`` float32 ``(dx, dy, dw, dh)``, zero wherever
        ``loc_weight`` is zero; ``"loc_weight"``: ``(B, A, S, S)`` float32, ``1 / num_pos``
        of the pair on its positives, else 0. Anchor ``a`` of the network's ``cls`` output
        is channel ``a`` (background) / ``A + a`` (foreground), of ``loc`` channel
        ``k * A + a`` for coordinate ``k``.

    Raises:
        InvalidArgumentError: malformed batch.
        ConfigError: the geometry has no anchors.
    """
    num = check_batch(batch, geometry, keys=("search_box", "label"))
    boxes = batch["search_box"].float()
    device = boxes.device
    anchors = anchor_boxes(geometry, device)
    a, s = anchors.shape[0], geometry.score_size
    positive_pair = batch["label"] == 1

    iou = box_iou(boxes, anchors.reshape(-1, 4)).reshape(num, a, s, s)
    near = _near_object(boxes, geometry, radius=params.neg_radius)
    pos_candidates = positive_pair[:, None, None, None] & (iou > params.pos_iou)
    neg_candidates = torch.where(
        positive_pair[:, None, None, None], iou < params.neg_iou, near[:, None].expand_as(iou)
    )
    pos = sample_capped(pos_candidates.reshape(num, -1), params.pos_num, generator=generator)
    num_pos = pos.sum(dim=1)
    neg_cap = torch.where(
        positive_pair, params.total_num - num_pos, torch.full_like(num_pos, params.pos_num)
    )
    neg = sample_capped(neg_candidates.reshape(num, -1), neg_cap, generator=generator) & ~pos

    labels = torch.full((num, a * s * s), -1, dtype=torch.int64, device=device)
    labels[neg] = 0
    labels[pos] = 1
    pos = pos.reshape(num, a, s, s)
    weight = pos.float() / num_pos.clamp(min=1).float()[:, None, None, None]
    deltas = _box_deltas(boxes, anchors)
    deltas = torch.where(pos[:, None], deltas, torch.zeros_like(deltas))
    return {
        "cls_label": labels.reshape(num, a, s, s),
        "loc_target": deltas,
        "loc_weight": weight,
    }


@TARGETS.register("siammask")
def siammask_targets(
    batch: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The anchor targets plus mask targets at the cells of positive anchors.

    Args:
        batch: reads ``search_box``, ``label``, ``search_mask`` and ``has_mask``.
        geometry: needs ``anchor_shapes`` and ``mask_size``.
        params: as :func:`rpn_targets`.
        generator: source of the random subsampling.

    Returns:
        :func:`rpn_targets`' entries and ``"mask_positions"``: ``(N, 3)`` int64 ``(batch
        index, row, col)`` of every cell holding a positive anchor in a positive pair with
        ``has_mask`` (at most ``pos_num`` per pair, ordered by pair, row, col), the positions
        to pass to ``SiamMaskNet.mask_logits``; ``"mask_targets"``: ``(N, M, M)`` float32
        in ``[0, 1]``, the gt mask in each cell's window.

    Raises:
        InvalidArgumentError: malformed batch.
        ConfigError: the geometry has no anchors or no mask size.
    """
    check_batch(batch, geometry, keys=("search_box", "label", "search_mask", "has_mask"))
    targets = rpn_targets(batch, geometry=geometry, params=params, generator=generator)
    with_mask = (batch["label"] == 1) & batch["has_mask"].bool()
    cells = (targets["cls_label"] == 1).any(dim=1) & with_mask[:, None, None]
    positions = torch.nonzero(cells)
    targets["mask_positions"] = positions
    targets["mask_targets"] = crop_mask_windows(batch["search_mask"], positions, geometry=geometry)
    return targets


def _near_object(boxes: torch.Tensor, geometry: TargetGeometry, *, radius: int) -> torch.Tensor:
    """``(B, S, S)`` bool: cells within ``radius`` cells of the cell nearest each box centre."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    cell = torch.floor((center - geometry.offset) / geometry.stride + 0.5)
    grid = torch.arange(geometry.score_size, device=boxes.device, dtype=torch.float32)
    near_x = (grid[None, :] - cell[:, 0:1]).abs() <= radius
    near_y = (grid[None, :] - cell[:, 1:2]).abs() <= radius
    return near_y[:, :, None] & near_x[:, None, :]


def _box_deltas(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``(B, 4, A, S, S)`` deltas of ``(B, 4)`` xyxy boxes against ``(A, S, S, 4)`` anchors.

    Degenerate boxes give non-finite sizes; callers mask them out.
    """
    aw = anchors[..., 2] - anchors[..., 0]
    ah = anchors[..., 3] - anchors[..., 1]
    acx = anchors[..., 0] + aw / 2
    acy = anchors[..., 1] + ah / 2
    b = boxes[:, :, None, None, None]
    tw, th = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    tcx, tcy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    return torch.stack(
        [(tcx - acx) / aw, (tcy - acy) / ah, torch.log(tw / aw), torch.log(th / ah)], dim=1
    )
