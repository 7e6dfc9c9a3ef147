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
from matcher.inference.pyramid import Level, level_scales, plan_level, render_level
from matcher.inference.refine import (
    CoarseToFine,
    WindowGrid,
    coarse_levels,
    refine_levels,
    window_at,
    window_grid,
)
from matcher.inference.tiles import (
    Piece,
    encode_tile,
    reported_piece,
    run_level,
    run_tile,
    stitch,
    tile_cells,
)
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
        shrink = cfg is not None  # the coarse pass pads small levels only as needed
        for i in sorted({i for used in per_ref for i in used}):
            plan = plan_level(scales[i], size, geometry, params.working_size, shrink=shrink)
            canvas = render_level(scene, plan, fill)
            full[i] = run_level(
                net, templates, canvas, plan, geometry, params.reference_batch, device
            )
        levels = [[full[i] for i in used] for used in per_ref]
        if cfg is not None:
            loose = dataclasses.replace(
                params, score_threshold=min(cfg.min_score, params.score_threshold)
            )
            coarse = _decode_all(decoder, levels, ref_geometry, size, loose)
            asked, grids = _refinements(
                coarse, ref_geometry, ranges, per_ref, scales, cfg, geometry, size
            )
            for i, wants in sorted(asked.items()):
                refined = _refine_level(
                    net,
                    templates,
                    scene,
                    fill,
                    scales[i],
                    grids[i],
                    wants,
                    geometry,
                    params,
                    device,
                )
                for row, own in refined.items():
                    levels[row].append(own)
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
) -> tuple[dict[int, dict[int, set[int]]], dict[int, WindowGrid]]:
    """Grid level -> reference row -> the windows (tile indices of the level's
    :func:`window_grid`) around its best coarse candidates, on the levels near the one
    matching the candidate's size that the reference's coarse pass did not search; and
    those levels' window grids."""
    asked: dict[int, dict[int, set[int]]] = {}
    grids: dict[int, WindowGrid] = {}
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
                if i not in grids:
                    grids[i] = window_grid(scales[i], scene_size, geometry)
                window = window_at(grids[i], centre)
                asked.setdefault(i, {}).setdefault(row, set()).add(window)
    return asked, grids


def _refine_level(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    scene: np.ndarray,
    fill: np.ndarray,
    scale: float,
    grid: WindowGrid,
    wants: dict[int, set[int]],
    geometry: NetGeometry,
    params: SearchParams,
    device: torch.device,
) -> dict[int, LevelOutputs]:
    """Each asking reference's outputs on one refined level, from its own windows only:
    each window searched on its own, or, when the windows asked for cost more backbone
    pixels than the level in one piece (many references, as in ``match_many``), the level
    encoded once in full and each window's reported cells cut from it. Either way the
    heads correlate only the cells a window reports (:func:`reported_piece`). A cell
    reported with its whole template window inside the input has the same value either
    way in an unpadded network (AlexNet); in a padded one only the zero padding's far
    reach differs."""
    windows = sorted(set().union(*wants.values()))
    asking = {t: sorted(r for r, own in wants.items() if t in own) for t in windows}
    groups = {t: [templates[r] for r in asking[t]] for t in windows}
    whole = plan_level(scale, scene.shape[:2], geometry, params.working_size, shrink=True)
    side = grid.level.tiles[0].width
    ran: dict[int, list[Piece]] = {t: [] for t in windows}
    if sum(t.width * t.height for t in whole.tiles) <= len(windows) * side * side:
        canvas = render_level(scene, whole, fill)
        reports = {t: tile_cells(grid.level.tiles[t], geometry) for t in windows}
        for tile in whole.tiles:
            xk = encode_tile(net, canvas, tile, device)
            gx0, gy0, keep = tile_cells(tile, geometry)
            for t in windows:
                cells = _window_cells(reports[t], gx0, gy0, keep)
                if cells.any():
                    piece = reported_piece(
                        net, groups[t], xk, gx0, gy0, cells, params.reference_batch
                    )
                    ran[t].append(piece)
    else:
        canvas = render_level(scene, grid.level, fill)
        for t in windows:
            tile = grid.level.tiles[t]
            piece = run_tile(net, groups[t], canvas, tile, geometry, params.reference_batch, device)
            ran[t].append(piece)
    return {
        row: _own_windows(grid.level, row, sorted(own), asking, ran, geometry, len(templates))
        for row, own in sorted(wants.items())
        if any(ran[t] for t in own)
    }


def _window_cells(
    window: tuple[int, int, torch.Tensor], gx0: int, gy0: int, keep: torch.Tensor
) -> torch.Tensor:
    """The cells of a tile (first cell ``(gx0, gy0)``, reporting ``keep``) that a window
    of the same level's window grid reports (its :func:`tile_cells`), in the tile's cell
    coordinates."""
    wx0, wy0, wkeep = window
    cells = torch.zeros_like(keep)
    y_lo, y_hi = max(gy0, wy0), min(gy0 + keep.shape[0], wy0 + wkeep.shape[0])
    x_lo, x_hi = max(gx0, wx0), min(gx0 + keep.shape[1], wx0 + wkeep.shape[1])
    if y_lo < y_hi and x_lo < x_hi:
        cells[y_lo - gy0 : y_hi - gy0, x_lo - gx0 : x_hi - gx0] = wkeep[
            y_lo - wy0 : y_hi - wy0, x_lo - wx0 : x_hi - wx0
        ]
    return cells & keep


def _own_windows(
    level: Level,
    row: int,
    windows: list[int],
    asking: dict[int, list[int]],
    ran: dict[int, list[Piece]],
    geometry: NetGeometry,
    references: int,
) -> LevelOutputs:
    """One reference's outputs on a refined level, from its own windows only, stitched in
    window order (neighbouring windows overlap), seen at every row index."""
    pieces = []
    for t in windows:
        k = asking[t].index(row)
        for gx0, gy0, keep, outs in ran[t]:
            pieces.append((gx0, gy0, keep, {n: v[k : k + 1] for n, v in outs.items()}))
    own = stitch(level, pieces, geometry)
    return dataclasses.replace(own, outputs=_row_everywhere(own.outputs, 0, references))


def _row_everywhere(
    outputs: dict[str, torch.Tensor], k: int, references: int
) -> dict[str, torch.Tensor]:
    """Row ``k`` of ``outputs`` seen at every one of ``references`` row indices (a view:
    the decoder reads a reference's own row by its index)."""
    return {n: v[k : k + 1].expand(references, *v.shape[1:]) for n, v in outputs.items()}


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
