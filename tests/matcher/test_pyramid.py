"""The search plan covers every scene position once, at every needed scale."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from matcher.inference.pyramid import level_scales, plan_level
from matcher.model_config import NetGeometry

GEOMETRIES = [
    # PySOT ResNet, PySOT AlexNet, SiamFC
    NetGeometry(
        127, 255, 8, base_size=8, context_amount=0.5, offset=31.0, score_size=25, num_anchors=5
    ),
    NetGeometry(
        127, 287, 8, base_size=0, context_amount=0.5, offset=63.0, score_size=21, num_anchors=5
    ),
    NetGeometry(
        127, 255, 8, base_size=0, context_amount=0.5, offset=63.0, score_size=17, num_anchors=1
    ),
]


def test_scales_bracket_each_references_size_range_on_a_fixed_grid():
    scales, ranges = level_scales(
        scene_short_side=480,
        template_long_sides=[63.5, 90.0],
        min_fraction=0.1,
        max_fraction=1.0,
        scale_step=1.26,
        max_upscale=4.0,
    )
    assert scales == sorted(scales, reverse=True)
    ratios = np.array(scales[:-1]) / np.array(scales[1:])
    assert np.allclose(ratios, 1.26)
    assert all(
        math.isclose(math.log(s) / math.log(1.26), round(math.log(s) / math.log(1.26)))
        for s in scales
    )
    for side, (first, last) in zip([63.5, 90.0], ranges, strict=True):
        assert scales[first] >= side / 48 > scales[first + 1]  # largest needed scale bracketed
        assert scales[last] <= side / 480 < scales[last - 1]  # smallest needed scale bracketed
    alone, _ = level_scales(
        scene_short_side=480,
        template_long_sides=[63.5],
        min_fraction=0.1,
        max_fraction=1.0,
        scale_step=1.26,
        max_upscale=4.0,
    )
    first, last = ranges[0]
    assert alone == scales[first : last + 1]  # a reference's levels do not depend on others


def test_upscaling_is_capped():
    scales, ranges = level_scales(
        scene_short_side=40,
        template_long_sides=[63.5],
        min_fraction=0.1,
        max_fraction=1.0,
        scale_step=1.26,
        max_upscale=4.0,
    )
    assert max(scales) <= 4.0 + 1e-9 and ranges == [(0, len(scales) - 1)]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("working_size", [255, 400, 1024])
@pytest.mark.parametrize("scene", [(480, 640), (37, 1900), (1500, 300)])
def test_tiles_report_every_scene_position_exactly_once(geometry, working_size, scene):
    level = plan_level(1.0, scene, geometry, working_size)
    assert level.padded_width >= level.width + level.pad and level.padded_height >= level.height
    for tile in level.tiles:
        assert tile.width <= max(working_size, geometry.instance_size)
        assert (tile.width - geometry.instance_size) % geometry.stride == 0
        assert tile.x0 % geometry.stride == 0 and tile.y0 % geometry.stride == 0
        assert tile.x0 + tile.width <= level.padded_width
    # Every cell centre over the scene is reported by exactly one tile ...
    gx = geometry.cells(level.padded_width)
    centers = geometry.offset + geometry.stride * np.arange(gx)
    scene_cells = centers[(centers >= level.pad) & (centers < level.pad + level.width)]
    assert len(scene_cells) >= math.floor(level.width / geometry.stride)
    for c in scene_cells:
        owners = [
            t
            for t in level.tiles
            if t.keep[0] <= c < t.keep[2]
            and t.x0 + geometry.offset <= c <= t.x0 + t.width - 1 - geometry.offset
        ]
        owners_x = {t.x0 for t in owners}
        assert len(owners_x) == 1, (c, owners_x)
        # ... and that tile holds the cell's whole template window (unless at the border).
        tile = next(iter(owners))
        if tile.x0 > 0:
            assert c - geometry.support >= tile.x0
        if tile.x0 + tile.width < level.padded_width:
            assert c + geometry.support <= tile.x0 + tile.width - 1


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("scale", [1.26, 1.59, 2.0, 3.2])
def test_tiles_share_a_large_level_instead_of_running_past_it(geometry, scale):
    """Tiled levels are padded by less than a stride per tile beyond what the network needs
    (full-size tiles once padded a 1,150-pixel level to 1,919), with no more tiles than
    full-size ones would take."""
    level = plan_level(scale, (480, 640), geometry, 1024)
    for side, padded, count, size in (
        (level.width, level.padded_width, len({t.x0 for t in level.tiles}), level.tiles[0].width),
        (
            level.height,
            level.padded_height,
            len({t.y0 for t in level.tiles}),
            level.tiles[0].height,
        ),
    ):
        needed = geometry.fit(side + 2 * level.pad)
        assert needed <= padded < needed + count * geometry.stride
        # plan_level's tile for a working size of 1024
        full = geometry.instance_size + (1024 - geometry.instance_size) // 8 * 8
        support = math.ceil(geometry.support)
        step = (full - 2 * support) // geometry.stride * geometry.stride
        assert count == (1 if needed <= full else 1 + math.ceil((needed - full) / step))
        assert size <= max(full, geometry.instance_size)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("scale", [0.125, 0.2, 0.25, 1.0])
def test_a_shrunk_small_level_keeps_every_cell_on_the_scene(geometry, scale):
    """The coarse-to-fine pass pads a level smaller than the tracker's search only to what
    the network takes: the same cells over the scene and its padding, fewer beyond."""
    geometry = dataclasses.replace(geometry, min_instance_size=geometry.exemplar_size)
    full = plan_level(scale, (480, 640), geometry, 1024)
    small = plan_level(scale, (480, 640), geometry, 1024, shrink=True)
    assert (small.pad, small.width, small.height) == (full.pad, full.width, full.height)
    for got, want, side in (
        (small.padded_width, full.padded_width, full.width),
        (small.padded_height, full.padded_height, full.height),
    ):
        assert (got - geometry.instance_size) % geometry.stride == 0
        assert side + 2 * full.pad <= got <= want
        assert got >= geometry.min_instance_size and got < side + 2 * full.pad + geometry.stride
        # every cell centred on the scene or its padding is still there
        last = geometry.offset + geometry.stride * (geometry.cells(got) - 1)
        assert last >= side + 2 * full.pad - 1 - geometry.offset
    if scale <= 0.25:  # a level under the tracker's search: a smaller canvas
        assert small.padded_width * small.padded_height < full.padded_width * full.padded_height
    else:
        assert (small.padded_width, small.padded_height) == (full.padded_width, full.padded_height)
