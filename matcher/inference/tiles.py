"""Running the Siamese network over the tiles of a search level: the scene backbone and
the head's search branch once per tile, the correlation with every template, and the
outputs stitched into the level's score-map grid where each tile reports.

Used by the match-mode search (:mod:`matcher.inference.match`) for its pyramid levels and
the coarse-to-fine search's refinement windows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from matcher.inference.decode import LevelOutputs
from matcher.inference.pyramid import Level, Tile
from matcher.inference.tracking import crops_to_tensor
from matcher.model_config import NetGeometry

#: A tile's first cell ``(gx0, gy0)``, which of its cells it reports, and its outputs.
Piece = tuple[int, int, torch.Tensor, dict[str, torch.Tensor]]


def tile_cells(tile: Tile, geometry: NetGeometry) -> tuple[int, int, torch.Tensor]:
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


def run_level(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    canvas: np.ndarray,
    level: Level,
    geometry: NetGeometry,
    reference_batch: int,
    device: torch.device,
) -> LevelOutputs:
    """Every template's outputs over ``level`` (rendered as ``canvas``), tile by tile."""
    pieces = (
        run_tile(net, templates, canvas, tile, geometry, reference_batch, device)
        for tile in level.tiles
    )
    return stitch(level, pieces, geometry)


def stitch(level: Level, pieces: Iterable[Piece], geometry: NetGeometry) -> LevelOutputs:
    """The level's score-map grid from tiles' outputs, each written where its tile reports
    (a later piece over an earlier one where two report the same cell)."""
    grid_w = geometry.cells(level.padded_width)
    grid_h = geometry.cells(level.padded_height)
    stitched: dict[str, torch.Tensor] = {}
    covered = torch.zeros(grid_h, grid_w, dtype=torch.bool)
    for gx0, gy0, keep, outs in pieces:
        th, tw = keep.shape
        for name, value in outs.items():
            if name not in stitched:
                stitched[name] = torch.zeros(value.shape[0], value.shape[1], grid_h, grid_w)
            region = stitched[name][:, :, gy0 : gy0 + th, gx0 : gx0 + tw]
            region[:, :, keep] = value[:, :, keep]
        covered[gy0 : gy0 + th, gx0 : gx0 + tw] |= keep
    return LevelOutputs(
        scale=level.scale,
        pad=level.pad,
        offset=geometry.offset,
        stride=geometry.stride,
        outputs=stitched,
        covered=covered,
    )


def run_tile(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    canvas: np.ndarray,
    tile: Tile,
    geometry: NetGeometry,
    reference_batch: int,
    device: torch.device,
) -> Piece:
    """Every template's outputs on the cells one tile reports (float32, on the CPU), with
    the first of those cells and which of them the tile reports."""
    gx0, gy0, keep = tile_cells(tile, geometry)
    xk = encode_tile(net, canvas, tile, device)
    return reported_piece(net, templates, xk, gx0, gy0, keep, reference_batch)


def encode_tile(
    net: torch.nn.Module, canvas: np.ndarray, tile: Tile, device: torch.device
) -> list[torch.Tensor]:
    """The search encoding (backbone and the head's search branch) of one tile of a
    rendered level, shared by every template."""
    crop = canvas[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
    return net.encode_search(crops_to_tensor(crop, device))


def reported_piece(
    net: torch.nn.Module,
    templates: list[list[torch.Tensor]],
    xk: list[torch.Tensor],
    gx0: int,
    gy0: int,
    keep: torch.Tensor,
    reference_batch: int,
) -> Piece:
    """Every template's outputs on the rectangle of cells ``keep`` marks, of a tile whose
    search encoding is ``xk`` and whose first cell is ``(gx0, gy0)``.

    Only the search features those cells read are correlated: every head's correlation
    and tower are unpadded, so a cell's value does not depend on the cells around it,
    and a tile's cells outside the rectangle (the margins that keep each reported cell's
    template window inside the tile, or all but a few cells of a level searched in one
    piece) cost the per-reference head nothing. Maps of another size in ``xk`` (SiamMask's
    refine features) pass through whole; the correlation does not read them.
    """
    rows = torch.nonzero(keep.any(dim=1)).flatten()
    cols = torch.nonzero(keep.any(dim=0)).flatten()
    if rows.numel() == 0:  # a tile that reports nothing: correlate it whole
        outs = correlate_all(net, templates, xk, reference_batch)
        return gx0, gy0, keep, {name: value.float().cpu() for name, value in outs.items()}
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    height, width = xk[0].shape[-2:]
    # a cell reads 1 + extra features along each axis
    extra_y, extra_x = height - keep.shape[0], width - keep.shape[1]
    window = [
        f[..., r0 : r1 + extra_y, c0 : c1 + extra_x] if f.shape[-2:] == (height, width) else f
        for f in xk
    ]
    outs = correlate_all(net, templates, window, reference_batch)
    sub = keep[r0:r1, c0:c1]
    # a padded correlation would give more cells than asked for
    assert all(v.shape[-2:] == sub.shape for v in outs.values()), "unpadded heads only"
    return gx0 + c0, gy0 + r0, sub, {name: value.float().cpu() for name, value in outs.items()}


def correlate_all(
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
