"""Detection batches: collating episodes of different sizes, moving them, checking targets.

A batch is a dict (:func:`collate_episodes`):

* ``scenes``: list of ``B`` ``(3, H_b, W_b)`` uint8 RGB scenes (sizes differ);
* ``references``: ``(B, K, 3, S, S)`` uint8 RGB;
* ``targets``: list of ``B`` dicts with ``boxes`` ``(N_b, 4)`` float32 xyxy scene pixels,
  ``labels`` ``(N_b,)`` int64 (1: matches the reference) and ``masks`` ``(N_b, H_b, W_b)``
  uint8 0/1 — torchvision's target format, validated by :func:`check_targets`;
* ``categories`` / ``image_ids``: ``(B,)`` int64.
"""

from __future__ import annotations

from typing import Any

import torch

TargetList = list[dict[str, torch.Tensor]]


def collate_episodes(items: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Episode items (:mod:`trainers.detection.episodes`) -> one batch (lists for scenes
    and targets, stacked tensors for the rest)."""
    return {
        "scenes": [item["scene"] for item in items],
        "references": torch.stack([item["reference"] for item in items]),
        "targets": [
            {"boxes": item["boxes"], "labels": item["labels"], "masks": item["masks"]}
            for item in items
        ],
        "categories": torch.stack([item["category"] for item in items]),
        "image_ids": torch.stack([item["image_id"] for item in items]),
    }


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of a collated batch on ``device``."""

    def move(value: Any) -> Any:
        if torch.is_tensor(value):
            return value.to(device, non_blocking=True)
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {key: move(value) for key, value in batch.items()}


def check_targets(targets: TargetList, scenes: list[torch.Tensor]) -> None:
    """Validate detection targets against their scenes.

    Args:
        targets: one dict per scene with ``boxes`` ``(N, 4)`` floating xyxy pixels
            (finite, ``x0 < x1``, ``y0 < y1``, inside the scene), ``labels`` ``(N,)`` int64
            ``>= 1`` and ``masks`` ``(N, H, W)`` uint8 or bool of the scene's size.
        scenes: the ``(3, H, W)`` scenes.

    Raises:
        ValueError: a missing key, a wrong shape, dtype or count, or a bad box.
    """
    if len(targets) != len(scenes):
        raise ValueError(f"{len(targets)} targets for {len(scenes)} scenes")
    for b, (target, scene) in enumerate(zip(targets, scenes, strict=True)):
        missing = {"boxes", "labels", "masks"} - set(target)
        if missing:
            raise ValueError(f"target {b} lacks {sorted(missing)}")
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        height, width = scene.shape[-2:]
        if boxes.dim() != 2 or boxes.shape[1] != 4 or not boxes.is_floating_point():
            raise ValueError(f"target {b}: boxes must be (N, 4) float, got {tuple(boxes.shape)}")
        n = boxes.shape[0]
        if labels.shape != (n,) or labels.dtype != torch.int64:
            raise ValueError(f"target {b}: labels must be ({n},) int64, got {labels.dtype}")
        if masks.shape != (n, height, width) or masks.dtype not in (torch.uint8, torch.bool):
            raise ValueError(
                f"target {b}: masks must be ({n}, {height}, {width}) uint8, got "
                f"{tuple(masks.shape)} {masks.dtype}"
            )
        if n == 0:
            continue
        if not torch.isfinite(boxes).all():
            raise ValueError(f"target {b}: boxes must be finite")
        if (boxes[:, 2] <= boxes[:, 0]).any() or (boxes[:, 3] <= boxes[:, 1]).any():
            raise ValueError(f"target {b}: boxes need x0 < x1 and y0 < y1")
        tol = 1.0
        if (
            (boxes[:, :2] < -tol).any()
            or (boxes[:, 2] > width + tol).any()
            or (boxes[:, 3] > height + tol).any()
        ):
            raise ValueError(f"target {b}: boxes lie outside the {width}x{height} scene")
        if (labels < 1).any():
            raise ValueError(f"target {b}: labels must be >= 1 (0 is the background)")
