"""The coarse-to-fine match search (``inference.match.coarse_to_fine``): its plan, what it
costs in backbone pixels next to the exhaustive search, that refinement finds a product at
a scale the coarse pass skipped, and that ``match_many`` still equals one ``match`` per
reference."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import matcher
from matcher.errors import ConfigError
from matcher.inference.pyramid import plan_level
from matcher.inference.refine import (
    MARGIN_CELLS,
    CoarseToFine,
    coarse_levels,
    window_at,
    window_grid,
)
from matcher.inference_config import MatchConfig
from matcher.model_config import net_geometry
from tests.helpers import clutter_scene, iou, paste, product_image, rpn_template_matcher

C2F = ["inference.match.coarse_to_fine=true"]
NO_C2F = ["inference.match.coarse_to_fine=false"]


def _pixels_searched(m) -> list[tuple[int, int]]:
    """Wrap the network's search branch to record each input's ``(h, w)``."""
    seen: list[tuple[int, int]] = []
    inner = m.net.encode_search

    def recording(x):
        seen.append((int(x.shape[-2]), int(x.shape[-1])))
        return inner(x)

    m.net.encode_search = recording
    return seen


def test_coarse_levels_cap_stride_and_keep_the_smallest():
    step = 1.26
    scales = [step**j for j in range(3, -8, -1)]  # 3 .. -7, decreasing
    cfg = CoarseToFine(max_scale=0.8, level_stride=2, candidates=3, min_score=0.1)
    picked = coarse_levels((0, len(scales) - 1), scales, step, cfg)
    exponents = [round(math.log(scales[i]) / math.log(step)) for i in picked]
    assert all(scales[i] <= 0.8 for i in picked)
    assert exponents[:-1] == [-2, -4, -6] and exponents[-1] == -7  # the smallest always
    # a range entirely above the cap is searched at its least enlarged level only
    assert coarse_levels((0, 2), scales, step, cfg) == [2]


@pytest.mark.parametrize("name", ["siamrpnpp_alexnet", "siamrpnpp_r50", "siamfcpp_alexnet"])
def test_a_points_window_reports_every_cell_near_it_with_its_template_inside(name):
    geometry = net_geometry(matcher.load_recipe(name).model)
    grid = window_grid(1.588, (480, 640), geometry)
    level = grid.level
    side = level.tiles[0].width
    assert side < geometry.instance_size and all(t.height == side for t in level.tiles)
    assert geometry.cells(side) >= 4 * MARGIN_CELLS
    support = geometry.support
    whole = plan_level(1.588, (480, 640), geometry, 1 << 30, shrink=True)
    # the one-piece level's last cell centres, along x and y
    last = [side_ - 1 - geometry.offset for side_ in (whole.padded_width, whole.padded_height)]
    for t in level.tiles:
        lo, hi = t.keep[0], t.keep[2]
        assert lo == -math.inf or lo >= t.x0 + support  # a reported cell holds its template
        assert hi <= t.x0 + side - support
        assert t.x0 + side <= level.padded_width and t.y0 + side <= level.padded_height
    reach = MARGIN_CELLS * geometry.stride
    for point in [(0.0, 0.0), (320.0, 240.0), (639.0, 479.0), (101.5, 377.25), (17.0, 5.0)]:
        window = level.tiles[window_at(grid, point)]
        along = (
            (point[0], window.keep[0], window.keep[2], last[0]),
            (point[1], window.keep[1], window.keep[3], last[1]),
        )
        for value, lo, hi, end in along:
            p = value * level.scale + level.pad
            assert lo <= max(p - reach, geometry.offset) and min(p + reach, end) < hi, point
    # together the windows report each cell of the one-piece level exactly as far as it goes
    xs = [geometry.offset + geometry.stride * j for j in range(geometry.cells(whole.padded_width))]
    columns = [t for t in level.tiles if t.y0 == 0]
    assert all(any(t.keep[0] <= x < t.keep[2] for t in columns) for x in xs)
    assert not any(t.keep[0] <= xs[-1] + geometry.stride < t.keep[2] for t in columns)


@functools.cache
def _pixels_per_match(*overrides: str) -> int:
    """Backbone input pixels of one SiamRPN++ AlexNet match (seeded random weights) of the
    coffee product in a 240x320 clutter scene."""
    torch.manual_seed(0)
    m = matcher.build("siamrpnpp_alexnet", overrides=list(overrides))
    seen = _pixels_searched(m)
    m.match(matcher.Reference.from_image(product_image("coffee")), clutter_scene(240, 320, seed=3))
    return sum(h * w for h, w in seen)


def test_coarse_to_fine_searches_under_half_the_pixels():
    """At the module's own settings (the recipe sets its own, tested below)."""
    defaults = MatchConfig()
    counts = {
        "exhaustive": _pixels_per_match(*NO_C2F),
        "coarse_to_fine": _pixels_per_match(
            *C2F,
            f"inference.match.coarse_max_scale={defaults.coarse_max_scale}",
            f"inference.match.refine_candidates={defaults.refine_candidates}",
            f"inference.match.refine_min_score={defaults.refine_min_score}",
        ),
    }
    assert counts["coarse_to_fine"] <= 0.45 * counts["exhaustive"], counts


def test_the_published_layouts_ship_the_coarse_to_fine_search_and_the_default_does_not():
    """The SiamRPN++, SiamFC++ and SiamMask ResNet-50 recipes search coarse-to-fine as
    loaded (settings checked on trained stand-ins, configs/proxy/); the default keeps the
    exhaustive search its accuracy was measured with."""
    shipped = {n: matcher.load_recipe(n).inference.match for n in matcher.list_recipes()}
    coarse = {n for n, m in shipped.items() if m.coarse_to_fine}
    published = {n for n in shipped if n.startswith(("siamrpnpp_", "siamfcpp_", "siammask_r50"))}
    assert coarse == published
    assert not shipped["siammask_small"].coarse_to_fine
    for name in published:
        m = shipped[name]
        settings = (m.coarse_max_scale, m.coarse_level_stride, m.refine_candidates)
        assert (*settings, m.refine_min_score) == (1.0, 2, 10, 0.05)
    counts = {"exhaustive": _pixels_per_match(*NO_C2F), "as_shipped": _pixels_per_match()}
    assert counts["as_shipped"] <= 0.5 * counts["exhaustive"], counts


def test_refinement_finds_a_product_at_a_level_the_coarse_pass_skipped():
    """The coarse pass searches every third level only; the exact template matcher sees
    the product weakly on a neighbouring level, and refinement at its own scale finds it
    as the exhaustive search does."""
    background = clutter_scene(480, 640, seed=3)
    box = (285, 205, 355, 275)
    scene = paste(background, product_image("astronaut"), box)
    ref = matcher.Reference.from_image(product_image("astronaut"))
    exhaustive = rpn_template_matcher()
    coarse = rpn_template_matcher(
        **{
            "inference.match.coarse_to_fine": "true",
            "inference.match.coarse_max_scale": 10.0,
            "inference.match.coarse_level_stride": 3,
        }
    )
    seen = _pixels_searched(coarse)
    want = exhaustive.match(ref, scene).best
    got = coarse.match(ref, scene).best
    assert want is not None and iou(want.box, box) >= 0.8
    assert got is not None and iou(got.box, box) >= 0.8, (got, box)
    assert got.score == pytest.approx(want.score, abs=0.05)
    geometry = coarse.geometry
    assert any(h == w < geometry.instance_size for h, w in seen)  # a refinement window ran


def test_coarse_to_fine_match_many_equals_individual_matches():
    """Windows asked for by one reference change nothing for another; nor does searching
    a refined level in one piece, which ``match_many`` does where its references ask for
    more windows than that level costs (AlexNet is unpadded: the same values)."""
    torch.manual_seed(0)
    overrides = [
        *C2F,
        "inference.match.coarse_level_stride=2",
        "inference.match.refine_min_score=0",
        "inference.match.refine_candidates=4",
    ]
    m = matcher.build("siamrpnpp_alexnet", overrides=overrides)
    rng = np.random.default_rng(0)
    scene = clutter_scene(300, 400, seed=5)
    refs = [
        matcher.Reference.from_image(rng.integers(0, 256, (60 + 40 * i, 90, 3), dtype=np.uint8))
        for i in range(3)
    ]
    seen = _pixels_searched(m)

    def window_pixels() -> int:
        windows = [h * w for h, w in seen if h == w < m.geometry.instance_size]
        seen.clear()
        return sum(windows)

    many = m.match_many(refs, scene, score_threshold=0.0, max_instances=5)
    shared = window_pixels()
    alone = []
    for ref in refs:
        result = m.match(ref, scene, score_threshold=0.0, max_instances=5)
        alone.append((result, window_pixels()))
    assert sum(pixels for _, pixels in alone) > shared  # some level ran whole in match_many
    assert any(pixels for _, pixels in alone)  # and single matches refined through windows
    for got, (want, _) in zip(many, alone, strict=True):
        assert len(got.instances) == len(want.instances) > 0
        for a, b in zip(got.instances, want.instances, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-5


@pytest.mark.parametrize(
    "bad",
    ["coarse_level_stride=0", "coarse_max_scale=0", "refine_candidates=-1", "refine_min_score=2"],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        matcher.load_recipe("siamrpnpp_alexnet", [f"inference.match.{bad}"])


@pytest.mark.parametrize("name", ["siamfcpp_alexnet", "siamrpnpp_alexnet", "siammask_r50"])
def test_the_heads_correlate_only_the_reported_cells_with_the_same_values(name):
    """``reported_piece`` cuts the search features to what a rectangle of cells reads; its
    outputs equal the whole tile's at those cells (every head is unpadded), SiamMask's
    refine maps of other sizes passing through."""
    from matcher.inference.tiles import correlate_all, reported_piece
    from matcher.inference.tracking import crops_to_tensor

    torch.manual_seed(0)
    m = matcher.build(name)
    net = m.net.eval()
    size = m.geometry.instance_size + 4 * m.geometry.stride
    crop = clutter_scene(size, size, seed=3)
    refs = [matcher.Reference.from_image(product_image(k)) for k in ("coffee", "rocket")]
    templates = [m.encode_reference(r).template for r in refs]
    with torch.no_grad():
        xk = net.encode_search(crops_to_tensor(crop, torch.device("cpu")))
        whole = correlate_all(net, templates, xk, 8)
        cells = next(iter(whole.values())).shape[-2:]
        keep = torch.zeros(cells, dtype=torch.bool)
        keep[2:5, 1:4] = True
        gx0, gy0, sub, outs = reported_piece(net, templates, xk, 10, 20, keep, 8)
    assert (gx0, gy0) == (11, 22) and sub.shape == (3, 3) and bool(sub.all())
    assert set(outs) == set(whole)
    for key, value in outs.items():
        assert value.shape[-2:] == (3, 3)
        torch.testing.assert_close(value, whole[key][..., 2:5, 1:4].float(), atol=1e-4, rtol=1e-4)
