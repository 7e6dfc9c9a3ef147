"""Match mode's search plan: an image pyramid over scale, tiled when a level is large.

A reference's template shows the product at a known size in template pixels (its box
times ``exemplar_size / s_z``). A scene level resized by ``scale`` shows a product of
longer side ``L`` at ``scale * L``; the network matches best when the two agree, so each
reference is searched over the levels (powers of ``scale_step``) that bring products from
``min_object_fraction`` to ``max_object_fraction`` of the scene's short side to the
template's size.

Each level is padded with the scene's mean colour so that score cells can sit on every
scene pixel, including the borders, and grown to a size the network's geometry accepts
(``instance_size + k * stride``). Levels wider or taller than ``working_size`` are cut into
overlapping tiles; each tile only reports cells whose whole template window lies inside
it (except at the level's outer edge), and neighbouring tiles' reporting ranges touch, so
every position is searched exactly as in one big pass, with bounded memory.

Coordinates: ``scene`` pixels; ``level`` pixels = scene * scale; ``padded`` = level + pad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from matcher.model_config import NetGeometry


@dataclass(frozen=True)
class Tile:
    """A window of a padded level.

    Attributes:
        x0 / y0: origin in padded-level pixels.
        width / height: size (network-compatible).
        keep: ``(x_lo, y_lo, x_hi, y_hi)`` half-open padded-level range in which this tile
            reports cell centres.
    """

    x0: int
    y0: int
    width: int
    height: int
    keep: tuple[float, float, float, float]


@dataclass(frozen=True)
class Level:
    """One pyramid level.

    Attributes:
        scale: level pixels per scene pixel.
        width / height: resized scene size.
        pad: padding added on the left and top (pixels).
        padded_width / padded_height: size after padding.
        tiles: windows covering the padded level.
    """

    scale: float
    width: int
    height: int
    pad: int
    padded_width: int
    padded_height: int
    tiles: tuple[Tile, ...]


def level_scales(
    *,
    scene_short_side: int,
    template_long_sides: list[float],
    min_fraction: float,
    max_fraction: float,
    scale_step: float,
    max_upscale: float,
) -> tuple[list[float], list[tuple[int, int]]]:
    """Scene scales to search and which of them each reference uses.

    Levels sit on a fixed grid, the integer powers of ``scale_step``, so the levels a
    reference is searched at do not depend on which other references share the pass.
    Each reference gets the contiguous run of grid levels bracketing the scales that bring
    its product, at ``min_fraction`` .. ``max_fraction`` of the scene's short side, to its
    size in the template.

    Args:
        scene_short_side: shorter side of the scene, pixels.
        template_long_sides: each reference's longer box side in template pixels.
        min_fraction / max_fraction: product size range (longer side / scene short side).
        scale_step: ratio between neighbouring levels.
        max_upscale: no level enlarges the scene by more than this.

    Returns:
        ``(scales, ranges)``: decreasing scales, and per reference the inclusive index
        range ``(first, last)`` of its levels in ``scales``.
    """
    log_step = math.log(scale_step)
    top = math.floor(math.log(max_upscale) / log_step + 1e-9)
    spans = []
    for side in template_long_sides:
        hi = side / (min_fraction * scene_short_side)
        lo = side / (max_fraction * scene_short_side)
        j_hi = min(math.ceil(math.log(hi) / log_step - 1e-9), top)
        j_lo = min(math.floor(math.log(lo) / log_step + 1e-9), j_hi)
        spans.append((j_lo, j_hi))
    grid = sorted({j for lo, hi in spans for j in range(lo, hi + 1)}, reverse=True)
    index = {j: i for i, j in enumerate(grid)}
    ranges = [(index[hi], index[lo]) for lo, hi in spans]
    return [scale_step**j for j in grid], ranges


def plan_level(
    scale: float,
    scene_size: tuple[int, int],
    geometry: NetGeometry,
    working_size: int,
    *,
    shrink: bool = False,
) -> Level:
    """Resize/pad/tile plan of one level.

    Args:
        scale: level pixels per scene pixel.
        scene_size: ``(height, width)`` of the scene.
        geometry: network geometry.
        working_size: maximum tile side (rounded down to what the network accepts, and
            never below ``instance_size``).
        shrink: a level smaller than the tracker's search is padded only to what the
            network takes (:meth:`NetGeometry.fit_window`), not grown to
            ``instance_size``: the same cells on the scene, fewer in the padding beyond
            it (the coarse-to-fine search's small levels).
    """
    scene_h, scene_w = scene_size
    width = max(1, round(scene_w * scale))
    height = max(1, round(scene_h * scale))
    pad = math.ceil(geometry.support)
    tile = geometry.instance_size
    if working_size > geometry.instance_size:
        tile += (working_size - geometry.instance_size) // geometry.stride * geometry.stride
    fit = geometry.fit_window if shrink else geometry.fit
    xs, x_bounds, padded_w, tile_w = _axis_tiles(fit(width + 2 * pad), tile, geometry)
    ys, y_bounds, padded_h, tile_h = _axis_tiles(fit(height + 2 * pad), tile, geometry)
    tiles = tuple(
        Tile(x0=x0, y0=y0, width=tile_w, height=tile_h, keep=(x_lo, y_lo, x_hi, y_hi))
        for y0, (y_lo, y_hi) in zip(ys, y_bounds, strict=True)
        for x0, (x_lo, x_hi) in zip(xs, x_bounds, strict=True)
    )
    return Level(
        scale=scale,
        width=width,
        height=height,
        pad=pad,
        padded_width=padded_w,
        padded_height=padded_h,
        tiles=tiles,
    )


def _axis_tiles(
    side: int, tile: int, geometry: NetGeometry
) -> tuple[list[int], list[tuple[float, float]], int, int]:
    """Tile origins along one axis, their half-open reporting ranges, the padded side and
    the tile side.

    As few tiles as ``tile``-sized ones would need, each made as small as still covers
    ``side``: the tiles share the padded side evenly rather than the last one running far
    past the level (two 1,023-pixel tiles for a 1,150-pixel level searched 1.8x its area).
    Neighbouring ranges meet where the later tile's full-support region begins, so each
    cell centre is reported by exactly one tile, one whose window holds its template.
    """
    if side <= tile:
        return [0], [(-math.inf, math.inf)], side, side
    support = math.ceil(geometry.support)
    stride = geometry.stride

    def step_of(size: int) -> int:
        return max(stride, (size - 2 * support) // stride * stride)

    count = 1 + math.ceil((side - tile) / step_of(tile))
    size = geometry.fit(math.ceil(side / count))
    while size < tile and (count - 1) * step_of(size) + size < side:
        size += stride
    starts = [i * step_of(size) for i in range(count)]
    edges = [-math.inf] + [s + support for s in starts[1:]] + [math.inf]
    bounds = [(edges[i], edges[i + 1]) for i in range(count)]
    return starts, bounds, starts[-1] + size, size


def render_level(scene: np.ndarray, level: Level, fill: np.ndarray) -> np.ndarray:
    """The padded level image: resized scene on a ``fill``-coloured canvas.

    Args:
        scene: ``(H, W, 3)`` uint8.
        level: its plan.
        fill: per-channel colour of the padding.

    Returns:
        ``(padded_height, padded_width, 3)`` uint8.
    """
    interp = cv2.INTER_AREA if level.scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(scene, (level.width, level.height), interpolation=interp)
    canvas = np.empty((level.padded_height, level.padded_width, 3), dtype=np.uint8)
    canvas[:] = np.clip(np.round(fill), 0, 255).astype(np.uint8)
    p = level.pad
    canvas[p : p + level.height, p : p + level.width] = resized
    return canvas
