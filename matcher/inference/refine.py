"""Coarse-to-fine planning for match mode: which pyramid levels the first pass searches in
full, and where the second pass looks again.

The exhaustive search runs the scene backbone over every level of the pyramid, and its
cost is dominated by the largest levels, the ones that enlarge the scene for the smallest
products. The coarse-to-fine search splits the work:

1. **Coarse pass.** Of a reference's grid levels, only those at most ``coarse_max_scale``
   whose exponent is a multiple of ``coarse_level_stride`` are searched in full, and the
   smallest one of its range always is (so a reference whose whole range lies above the
   cap is still searched, at its least enlarged level). A small product shows up there
   smaller than the template, as a weaker response.
2. **Refinement.** The reference's best coarse candidates are looked at again on the grid
   levels around the one whose scale brings the candidate's box to the template's size
   (those the coarse pass skipped), through the
   network-sized windows of that level around it (the tracker's local search, at full
   resolution). The windows are those of the level's tiling with network-sized tiles, so
   their reporting ranges never overlap: a window computes the same numbers whichever
   other windows run, and a reference is decoded only on the windows it asked for, which
   keeps ``match_many`` equal to one ``match`` per reference.

The decoder then sees, per reference, its coarse levels in full and its refined levels
where its windows report, and decodes them exactly as the exhaustive search's tiles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from matcher.inference.pyramid import Level, plan_level
from matcher.model_config import NetGeometry


@dataclass(frozen=True)
class CoarseToFine:
    """Settings of the coarse-to-fine search (``inference.match``).

    Attributes:
        max_scale: the coarse pass searches no level enlarging the scene beyond this
            (except a reference's smallest level).
        level_stride: the coarse pass searches the grid levels whose exponent is a
            multiple of this.
        candidates: coarse candidates per reference refined at their own scale.
        min_score: coarse candidates scoring below are not refined.
    """

    max_scale: float
    level_stride: int
    candidates: int
    min_score: float


def coarse_levels(
    span: tuple[int, int], scales: list[float], scale_step: float, cfg: CoarseToFine
) -> list[int]:
    """Indices (into the decreasing ``scales``) of a reference's levels that the coarse pass
    searches in full, given its inclusive index range ``span``."""
    first, last = span
    log_step = math.log(scale_step)
    picked = [
        i
        for i in range(first, last + 1)
        if scales[i] <= cfg.max_scale * (1 + 1e-9)
        and round(math.log(scales[i]) / log_step) % cfg.level_stride == 0
    ]
    if last not in picked:
        picked.append(last)
    return picked


def refine_levels(
    box: tuple[float, float, float, float],
    template_long_side: float,
    span: tuple[int, int],
    scales: list[float],
    level_stride: int,
) -> list[int]:
    """The grid levels in ``span`` to look at a candidate again: the one whose scale brings
    ``box`` closest to the template's product size (log-scale distance) and its
    neighbours up to ``max(1, level_stride - 1)`` levels away (a decoder that gives the
    reference's own box at the level it fired on says nothing about the better level)."""
    long_side = max(box[2] - box[0], box[3] - box[1], 1e-6)
    target = math.log(template_long_side / long_side)
    first, last = span
    best = min(range(first, last + 1), key=lambda i: abs(math.log(scales[i]) - target))
    reach = max(1, level_stride - 1)
    return list(range(max(first, best - reach), min(last, best + reach) + 1))


def window_plan(scale: float, scene_size: tuple[int, int], geometry: NetGeometry) -> Level:
    """A level tiled with network-sized windows (reporting ranges that partition it)."""
    return plan_level(scale, scene_size, geometry, geometry.instance_size)


def windows_near(
    level: Level, point: tuple[float, float], geometry: NetGeometry, margin_cells: int = 2
) -> set[int]:
    """Indices of ``level``'s tiles reporting cells within ``margin_cells`` of a scene
    point (usually one; two to four near a reporting range's edge)."""
    px = point[0] * level.scale + level.pad
    py = point[1] * level.scale + level.pad
    reach = margin_cells * geometry.stride
    return {
        k
        for k, tile in enumerate(level.tiles)
        if _overlaps(tile.keep[0], tile.keep[2], px - reach, px + reach)
        and _overlaps(tile.keep[1], tile.keep[3], py - reach, py + reach)
    }


def subset(level: Level, indices: set[int]) -> Level:
    """``level`` with only the tiles at ``indices``."""
    return dataclasses.replace(
        level, tiles=tuple(t for k, t in enumerate(level.tiles) if k in indices)
    )


def _overlaps(lo: float, hi: float, a: float, b: float) -> bool:
    return a < hi and b >= lo
