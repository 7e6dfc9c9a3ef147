"""The one-shot search: find every instance of one or more references in a whole scene.

Unlike tracking there is no previous position: the scene is searched everywhere, at every
scale in the pyramid planned by :mod:`matcher.inference.pyramid`, with no cosine window.
The scene backbone and the head's search branch run once per level and tile and are shared
by all references (``match_many``); only the correlation and its small head run per
reference. A decoder turns the stitched score maps into candidates, which are clipped to
the scene and de-duplicated across levels and tiles with NMS.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou, nms

from matcher.inference.decode import LevelOutputs, MatchDecoder, ReferenceGeometry
from matcher.inference.pyramid import Level, Tile, level_scales, plan_level, render_level
from matcher.inference.refine import (
    CoarseToFine,
    coarse_levels,
    refine_levels,
    subset,
    window_plan,
    windows_near,
)
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
    coarse_to_fine: CoarseToFine | None = None


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
    size = (height, width)
    cfg = params.coarse_to_fine
    with torch.no_grad():
        if cfg is None:
            per_ref = [list(range(first, last + 1)) for first, last in ranges]
        else:
            per_ref = [coarse_levels(span, scales, params.scale_step, cfg) for span in ranges]
        full = {}
        for i in sorted({i for used in per_ref for i in used}):
            plan = plan_level(scales[i], size, geometry, params.working_size)
            canvas = render_level(scene, plan, fill)
            full[i] = _run_level(net, templates, canvas, plan, geometry, params, device)
        levels = [[full[i] for i in used] for used in per_ref]
        if cfg is not None:
            loose = dataclasses.replace(
                params, score_threshold=min(cfg.min_score, params.score_threshold)
            )
            coarse = _decode_all(decoder, levels, ref_geometry, size, loose)
            asked, plans = _refinements(
                coarse, ref_geometry, ranges, per_ref, scales, cfg, geometry, size
            )
            for i, wants in sorted(asked.items()):
                plan = plans[i]
                run = subset(plan, set().union(*wants.values()))
                rows = sorted(wants)  # only the references that asked are correlated
                out = _run_level(
                    net,
                    [templates[r] for r in rows],
                    render_level(scene, run, fill),
                    run,
                    geometry,
                    params,
                    device,
                )
                for k, row in enumerate(rows):
                    # the reference's row of the outputs, seen at every row index
                    own = {
                        n: v[k : k + 1].expand(len(templates), *v.shape[1:])
                        for n, v in out.outputs.items()
                    }
                    covered = _coverage(run, [plan.tiles[t] for t in wants[row]], geometry)
                    levels[row].append(dataclasses.replace(out, outputs=own, covered=covered))
            levels = [sorted(own, key=lambda lv: -lv.scale) for own in levels]
        return _decode_all(decoder, levels, ref_geometry, size, params)


def _decode_all(
    decoder: MatchDecoder,
    levels: list[list[LevelOutputs]],
    ref_geometry: list[ReferenceGeometry],
    scene_size: tuple[int, int],
    params: SearchParams,
) -> list[list[Candidate]]:
    """Each reference's candidates from its searched levels (largest scale first)."""
    results = []
    for row, (ref, own) in enumerate(zip(ref_geometry, levels, strict=True)):
        boxes, scores = decoder.decode(
            own, row, ref, threshold=params.score_threshold, top_k=params.pre_nms_top_k
        )
        results.append(_finish(boxes, scores, scene_size, params))
    return results


def _refinements(
    coarse: list[list[Candidate]],
    ref_geometry: list[ReferenceGeometry],
    ranges: list[tuple[int, int]],
    searched: list[list[int]],
    scales: list[float],
    cfg: CoarseToFine,
    geometry: NetGeometry,
    scene_size: tuple[int, int],
) -> tuple[dict[int, dict[int, set[int]]], dict[int, Level]]:
    """Grid level -> reference row -> the windows (tile indices of the level's
    :func:`window_plan`) around its best coarse candidates, on the levels near the one
    matching the candidate's size that the reference's coarse pass did not search; and
    those levels' window plans."""
    asked: dict[int, dict[int, set[int]]] = {}
    plans: dict[int, Level] = {}
    for row, (cands, ref, span) in enumerate(zip(coarse, ref_geometry, ranges, strict=True)):
        long_side = max(ref.width, ref.height)
        for cand in cands[: cfg.candidates]:
            if cand.score < cfg.min_score:
                break
            x0, y0, x1, y1 = cand.box
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            for i in refine_levels(cand.box, long_side, span, scales, cfg.level_stride):
                if i in searched[row]:
                    continue
                if i not in plans:
                    plans[i] = window_plan(scales[i], scene_size, geometry)
                near = windows_near(plans[i], centre, geometry)
                asked.setdefault(i, {}).setdefault(row, set()).update(near)
    return asked, plans


def _coverage(level: Level, tiles: list[Tile], geometry: NetGeometry) -> torch.Tensor:
    """The cells of ``level`` that ``tiles`` report."""
    covered = torch.zeros(
        geometry.cells(level.padded_height), geometry.cells(level.padded_width), dtype=torch.bool
    )
    for tile in tiles:
        gx0, gy0, keep = _tile_cells(tile, geometry)
        covered[gy0 : gy0 + keep.shape[0], gx0 : gx0 + keep.shape[1]] |= keep
    return covered


def _tile_cells(tile: Tile, geometry: NetGeometry) -> tuple[int, int, torch.Tensor]:
    """A tile's first cell ``(gx0, gy0)`` and which of its cells it reports."""
    stride = geometry.stride
    gx0, gy0 = tile.x0 // stride, tile.y0 // stride
    tw, th = geometry.cells(tile.width), geometry.cells(tile.height)
    x_lo, y_lo, x_hi, y_hi = tile.keep
    cx = geometry.offset + stride * torch.arange(gx0, gx0 + tw, dtype=torch.float32)
    cy = geometry.offset + stride * torch.arange(gy0, gy0 + th, dtype=torch.float32)
    keep_x = (cx >= x_lo) & (cx < x_hi)
    keep_y = (cy >= y_lo) & (cy < y_hi)
    return gx0, gy0, keep_y[:, None] & keep_x[None, :]


def _run_level(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    canvas: np.ndarray,
    level: Level,
    geometry: NetGeometry,
    params: SearchParams,
    device: torch.device,
) -> LevelOutputs:
    stride = geometry.stride
    grid_w = geometry.cells(level.padded_width)
    grid_h = geometry.cells(level.padded_height)
    stitched: dict[str, torch.Tensor] = {}
    covered = torch.zeros(grid_h, grid_w, dtype=torch.bool)
    for tile in level.tiles:
        crop = canvas[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        xk = net.encode_search(crops_to_tensor(crop, device))
        gx0, gy0, keep = _tile_cells(tile, geometry)
        th, tw = keep.shape
        outs = _correlate_all(net, templates, xk, params.reference_batch)
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
