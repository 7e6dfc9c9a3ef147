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
   (those the coarse pass skipped), each through one small window of that level around it
   (the tracker's local search, at full resolution). The windows of a level form a fixed
   grid, every ``2 * margin`` cells, each reporting a square of ``4 * margin`` cells
   (``margin``: 2) with its whole template window inside it: so the window around a point
   holds every cell within ``margin`` cells of it, in under half the pixels of the
   tracker's own search (191 rather than 287 pixels square for SiamRPN++ AlexNet).
   A window computes the same numbers whichever other windows run, and a reference is
   decoded only on its own windows, stitched in a fixed order, which keeps
   ``match_many`` equal to one ``match`` per reference. Where the windows asked for at a
   level cost more pixels than the level itself (many references), the level is searched
   in one piece instead and each reference reads only its windows' cells: the same
   values in an unpadded network, within the zero padding's reach in a padded one.
3. **Small levels.** The coarse pass pads a level smaller than the tracker's search only
   to what the network takes (:attr:`NetGeometry.min_instance_size`), not up to it.

The decoder then sees, per reference, its coarse levels in full and its refined levels
where its windows report, and decodes them exactly as the exhaustive search's tiles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from matcher.inference.pyramid import Level, Tile, plan_level
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


#: Refinement windows report the cells within this many cells of a candidate's centre.
MARGIN_CELLS = 2


@dataclass(frozen=True)
class WindowGrid:
    """The refinement windows of one level: a fixed grid of equal, overlapping windows.

    Attributes:
        level: the level, its ``tiles`` every window of the grid (row by row) and its
            padded size grown to hold them; each tile's ``keep`` is the range it reports.
        columns: windows per row.
        step: distance between neighbouring windows' origins (padded-level pixels).
        first: padded-level coordinate where window 0's reporting range begins.
    """

    level: Level
    columns: int
    step: int
    first: float


def window_grid(
    scale: float, scene_size: tuple[int, int], geometry: NetGeometry, margin: int = MARGIN_CELLS
) -> WindowGrid:
    """The refinement windows of the level at ``scale``: every ``2 * margin`` cells a
    window reporting ``4 * margin`` cells, as small as holds their template windows (never
    below what the network takes, :attr:`NetGeometry.min_instance_size`). Together the
    ranges report the cells of the level searched in one piece (as the coarse pass plans
    it, ``shrink``), no more."""
    whole = plan_level(scale, scene_size, geometry, _ONE_PIECE, shrink=True)
    support = math.ceil(geometry.support)
    step = 2 * margin * geometry.stride
    side = geometry.fit_window(2 * support + 2 * step)
    axes = [
        _axis_windows(padded - geometry.offset, support, step)
        for padded in (whole.padded_width, whole.padded_height)
    ]
    tiles = tuple(
        Tile(x0=x0, y0=y0, width=side, height=side, keep=(x_lo, y_lo, x_hi, y_hi))
        for y0, (y_lo, y_hi) in axes[1]
        for x0, (x_lo, x_hi) in axes[0]
    )
    level = dataclasses.replace(
        whole,
        padded_width=max(whole.padded_width, axes[0][-1][0] + side),
        padded_height=max(whole.padded_height, axes[1][-1][0] + side),
        tiles=tiles,
    )
    return WindowGrid(level=level, columns=len(axes[0]), step=step, first=support)


def window_at(grid: WindowGrid, point: tuple[float, float]) -> int:
    """Index (into ``grid.level.tiles``) of the window reporting every cell within the
    grid's margin (half its step) of a scene point."""
    level = grid.level
    counts = (grid.columns, len(level.tiles) // grid.columns)
    index = []
    for value, count in zip(point, counts, strict=True):
        p = value * level.scale + level.pad
        k = math.floor((p - grid.step / 2 - grid.first) / grid.step)
        index.append(min(max(k, 0), count - 1))
    return index[1] * grid.columns + index[0]


def _axis_windows(limit: float, support: int, step: int) -> list[tuple[int, tuple[float, float]]]:
    """Along one axis, each window's origin and the range of cell centres it reports (the
    first open below, all cut at ``limit``, just past the last cell centre)."""
    count = max(1, math.ceil((limit - support - 2 * step) / step) + 1)
    return [
        (
            k * step,
            (
                -math.inf if k == 0 else k * step + support,
                min(k * step + support + 2 * step, limit),
            ),
        )
        for k in range(count)
    ]


#: A working size no level reaches: the level in one piece.
_ONE_PIECE = 1 << 30
