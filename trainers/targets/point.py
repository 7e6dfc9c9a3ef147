"""Point targets: SiamFC's response labels (``siamfc``) and SiamFC++'s dense box targets
(``siamfcpp``).

Score cell ``(row, col)`` is the search-crop point ``(offset + stride * col, offset + stride
* row)``.

* SiamFC (siamfc-pytorch ``_create_labels``): a cell is positive when its L1 distance, in
  cells, from the gt box centre is at most ``r_pos / stride``; every other cell is negative.
  Negative pairs are negative everywhere.
* SiamFC++ (video_analyst ``make_densebox_target`` v2.1, one box): a cell is positive iff it
  lies strictly inside the gt box (its distances ``l, t, r, b`` to the left, top, right and
  bottom edges are all ``> 0``); its centre-ness is ``sqrt(min(l, r) / max(l, r) * min(t, b)
  / max(t, b))`` (0 outside the box) and its box target is the gt box itself. In negative
  pairs the cells inside the (wrong) box are negatives, all others are ignored, and the
  centre-ness is kept.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from matcher.train_config import TargetConfig
from trainers.targets.geometry import TargetGeometry, score_cell_centers
from trainers.targets.registry import TARGETS, check_batch


@TARGETS.register("siamfc")
def response_targets(
    batch: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """SiamFC's response labels.

    Args:
        batch: reads ``search_box`` and ``label``.
        geometry: score-map geometry.
        params: ``r_pos`` (search pixels).
        generator: unused (no sampling).

    Returns:
        ``"cls_label"``: ``(B, 1, S, S)`` int64, 1 positive, 0 negative.

    Raises:
        InvalidArgumentError: malformed batch.
    """
    check_batch(batch, geometry, keys=("search_box", "label"))
    boxes = batch["search_box"].float()
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    cell = (center - geometry.offset) / geometry.stride
    grid = torch.arange(geometry.score_size, device=boxes.device, dtype=torch.float32)
    dx = (grid[None, :] - cell[:, 0:1]).abs()
    dy = (grid[None, :] - cell[:, 1:2]).abs()
    inside = dy[:, :, None] + dx[:, None, :] <= params.r_pos / geometry.stride
    labels = inside & (batch["label"] == 1)[:, None, None]
    return {"cls_label": labels[:, None].long()}


@TARGETS.register("siamfcpp")
def densebox_targets(
    batch: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """SiamFC++'s classification, centre-ness and box targets.

    Args:
        batch: reads ``search_box`` and ``label``.
        geometry: score-map geometry.
        params: unused (no thresholds in SiamFC++'s assignment).
        generator: unused (no sampling).

    Returns:
        ``"cls_label"``: ``(B, 1, S, S)`` int64, 1 positive, 0 negative, -1 ignored;
        ``"ctr_target"``: ``(B, 1, S, S)`` float32 centre-ness in ``[0, 1]``, 0 outside the
        box; ``"ltrb_target"``: ``(B, 4, S, S)`` float32 distances ``(l, t, r, b)`` from
        each cell to the box edges in search pixels (negative outside the box);
        ``"box_target"``: ``(B, 4)`` float32 xyxy, the gt box.

    Raises:
        InvalidArgumentError: malformed batch.
    """
    num = check_batch(batch, geometry, keys=("search_box", "label"))
    boxes = batch["search_box"].float()
    s = geometry.score_size
    centers = score_cell_centers(geometry, boxes.device)
    cx = centers[None, None, :].expand(num, s, s)
    cy = centers[None, :, None].expand(num, s, s)
    b = boxes[:, :, None, None]
    ltrb = torch.stack([cx - b[:, 0], cy - b[:, 1], b[:, 2] - cx, b[:, 3] - cy], dim=1)
    inside = (ltrb > 0).all(dim=1)
    lr_ratio = ltrb[:, [0, 2]].min(dim=1).values / ltrb[:, [0, 2]].max(dim=1).values.clamp(min=1e-6)
    tb_ratio = ltrb[:, [1, 3]].min(dim=1).values / ltrb[:, [1, 3]].max(dim=1).values.clamp(min=1e-6)
    ctr = torch.where(inside, (lr_ratio * tb_ratio).clamp(min=0).sqrt(), torch.zeros_like(cx))
    positive_pair = (batch["label"] == 1)[:, None, None]
    labels = torch.where(
        positive_pair,
        inside.long(),
        torch.where(inside, torch.zeros_like(ltrb[:, 0], dtype=torch.int64), -1),
    )
    return {
        "cls_label": labels[:, None],
        "ctr_target": ctr[:, None],
        "ltrb_target": ltrb,
        "box_target": boxes.clone(),
    }
