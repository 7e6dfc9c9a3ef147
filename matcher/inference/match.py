"""The one-shot search: find every instance of one or more references in a whole scene.

Unlike tracking there is no previous position: the scene is searched everywhere, at every
scale in the pyramid planned by :mod:`matcher.inference.pyramid`, with no cosine window.
The scene backbone and the head's search branch run once per level and tile and are shared
by all references (``match_many``); only the correlation and its small head run per
reference. A decoder turns the stitched score maps into candidates, which are clipped to
the scene and de-duplicated across levels and tiles with NMS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou, nms

from matcher.inference.decode import LevelOutputs, MatchDecoder, ReferenceGeometry
from matcher.inference.pyramid import Level, level_scales, plan_level, render_level
from matcher.inference.tracking import crops_to_tensor
from matcher.model_config import NetGeometry
from matcher.structures import Instance

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchParams:
    """Resolved match-mode settings (from ``MatchConfig`` and call arguments)."""

    score_threshold: float
    max_instances: int
    nms_iou: float
    min_object_fraction: float
    max_object_fraction: float
    scale_step: float
    max_upscale: float
    working_size: int
    pre_nms_top_k: int
    box_voting_iou: float = 0.0
    reference_batch: int = 8


@dataclass(frozen=True, eq=False)
class Candidate:
    """A decoded detection before it becomes an :class:`Instance`."""

    box: tuple[float, float, float, float]
    score: float


def search_templates(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    ref_geometry: list[ReferenceGeometry],
    scene: np.ndarray,
    *,
    geometry: NetGeometry,
    decoder: MatchDecoder,
    params: SearchParams,
    device: torch.device,
) -> list[list[Candidate]]:
    """Search ``scene`` for every template.

    Args:
        net: a :class:`~matcher.models.SiameseNet` in eval mode.
        templates: per reference, its template encoding (batch of one).
        ref_geometry: per reference, the product's size in template pixels.
        scene: ``(H, W, 3)`` uint8 in the network's channel order.
        geometry: network geometry.
        decoder: the family's match decoder.
        params: search settings.
        device: where the network runs.

    Returns:
        Per reference, candidates sorted by decreasing score, at most
        ``params.max_instances``, boxes clipped to the scene.
    """
    height, width = scene.shape[:2]
    scales, ranges = level_scales(
        scene_short_side=min(height, width),
        template_long_sides=[max(g.width, g.height) for g in ref_geometry],
        min_fraction=params.min_object_fraction,
        max_fraction=params.max_object_fraction,
        scale_step=params.scale_step,
        max_upscale=params.max_upscale,
    )
    fill = scene.reshape(-1, 3).mean(axis=0)
    levels = []
    with torch.no_grad():
        for scale in scales:
            level = plan_level(scale, (height, width), geometry, params.working_size)
            canvas = render_level(scene, level, fill)
            levels.append(
                _run_level(net, templates, canvas, level, geometry, params.reference_batch, device)
            )
        results = []
        for row, (ref, (first, last)) in enumerate(zip(ref_geometry, ranges, strict=True)):
            boxes, scores = decoder.decode(
                levels[first : last + 1],
                row,
                ref,
                threshold=params.score_threshold,
                top_k=params.pre_nms_top_k,
            )
            results.append(_finish(boxes, scores, (height, width), params))
    return results


def _run_level(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    canvas: np.ndarray,
    level: Level,
    geometry: NetGeometry,
    reference_batch: int,
    device: torch.device,
) -> LevelOutputs:
    stride = geometry.stride
    grid_w = geometry.cells(level.padded_width)
    grid_h = geometry.cells(level.padded_height)
    stitched: dict[str, torch.Tensor] = {}
    covered = torch.zeros(grid_h, grid_w, dtype=torch.bool)
    centers = geometry.offset + stride * torch.arange(max(grid_w, grid_h), dtype=torch.float32)
    for tile in level.tiles:
        crop = canvas[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        xk = net.encode_search(crops_to_tensor(crop, device))
        gx0, gy0 = tile.x0 // stride, tile.y0 // stride
        tw, th = geometry.cells(tile.width), geometry.cells(tile.height)
        x_lo, y_lo, x_hi, y_hi = tile.keep
        cx = centers[gx0 : gx0 + tw]
        cy = centers[gy0 : gy0 + th]
        keep_x = (cx >= x_lo) & (cx < x_hi)
        keep_y = (cy >= y_lo) & (cy < y_hi)
        keep = keep_y[:, None] & keep_x[None, :]
        outs = _correlate_all(net, templates, xk, reference_batch)
        for name, value in outs.items():
            value = value.float().cpu()
            if name not in stitched:
                stitched[name] = torch.zeros(
                    value.shape[0], value.shape[1], grid_h, grid_w, dtype=torch.float32
                )
            region = stitched[name][:, :, gy0 : gy0 + th, gx0 : gx0 + tw]
            region[:, :, keep] = value[:, :, keep]
        covered[gy0 : gy0 + th, gx0 : gx0 + tw] |= keep
    return LevelOutputs(
        scale=level.scale,
        pad=level.pad,
        offset=geometry.offset,
        stride=stride,
        outputs=stitched,
        covered=covered,
    )


def _correlate_all(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    xk: list[torch.Tensor],
    reference_batch: int,
) -> dict[str, torch.Tensor]:
    """Correlate one search encoding with every template, ``reference_batch`` at a time."""
    chunks: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(templates), reference_batch):
        group = templates[start : start + reference_batch]
        zk = [torch.cat(parts, dim=0) for parts in zip(*group, strict=True)]
        chunks.append(net.correlate(zk, xk))
    return {name: torch.cat([c[name] for c in chunks], dim=0) for name in chunks[0]}


def _finish(
    boxes: np.ndarray, scores: np.ndarray, scene_size: tuple[int, int], params: SearchParams
) -> list[Candidate]:
    height, width = scene_size
    if len(scores) == 0:
        return []
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    boxes, scores = boxes[finite], scores[finite]
    with np.errstate(over="ignore", invalid="ignore"):
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
    boxes, scores = boxes[inside], scores[inside]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    valid = ((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)
    boxes, scores = boxes[valid], scores[valid]
    if len(scores) == 0:
        return []
    boxes_t, scores_t = torch.from_numpy(boxes), torch.from_numpy(scores)
    keep = nms(boxes_t, scores_t, params.nms_iou)[: params.max_instances]
    if params.box_voting_iou > 0:
        voted = _box_voting(boxes_t, scores_t, keep, params.box_voting_iou)
    else:
        voted = boxes_t[keep]
    return [
        Candidate(box=tuple(float(v) for v in box), score=float(scores[i]))  # type: ignore[arg-type]
        for box, i in zip(voted.numpy(), keep.numpy(), strict=True)
    ]


def _box_voting(
    boxes: torch.Tensor, scores: torch.Tensor, keep: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Refine each kept box to the score-weighted mean of the candidates overlapping it
    by at least ``iou_threshold`` (box voting), which averages out the quantisation of
    cells, anchors and pyramid levels. A kept box whose neighbours all score 0 (scores
    underflow for references far from every anchor's shape, such as a 5000x1 strip) keeps
    its own coordinates rather than becoming 0/0."""
    overlaps = box_iou(boxes[keep], boxes)
    weights = torch.where(overlaps >= iou_threshold, scores[None, :], torch.zeros(()))
    total = weights.sum(dim=1, keepdim=True)
    voted = (weights @ boxes) / total.clamp_min(torch.finfo(total.dtype).tiny)
    return torch.where(total > 0, voted, boxes[keep])


def to_instances(candidates: list[Candidate]) -> tuple[Instance, ...]:
    """Box-only instances from candidates (families with masks add them elsewhere)."""
    return tuple(Instance(box=c.box, score=c.score) for c in candidates)
