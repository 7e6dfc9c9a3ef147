"""Match mode: the whole-scene search, tested with networks that are exact template
matchers (see ``tests/helpers.py``), so that any miss is a fault of the search machinery
(pyramid, tiling, decoding, coordinate mapping, NMS) and not of training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import matcher
from matcher.errors import InvalidArgumentError, InvalidImageError
from matcher.inference.decode import MatchDecoder
from matcher.inference.match import _box_voting
from tests.helpers import (
    clutter_scene,
    iou,
    paste,
    product_image,
    rpn_template_matcher,
    siamfc_template_matcher,
)

MATCHERS = {"siamfc_head": siamfc_template_matcher, "rpn_head": rpn_template_matcher}
SCENE_H, SCENE_W = 480, 640


@pytest.fixture(scope="module", params=sorted(MATCHERS))
def template_matcher(request):
    return MATCHERS[request.param]()


@pytest.fixture(scope="module")
def background():
    return clutter_scene(SCENE_H, SCENE_W, seed=3)


@pytest.mark.parametrize(
    ("kind", "box"),
    [  # the two products alternate over the sizes (each size costs a whole-scene search)
        ("astronaut", (292, 212, 348, 268)),  # 56 px: 0.12 of the short side
        ("coffee", (292, 212, 348, 268)),
        ("coffee", (265, 185, 375, 295)),  # 110 px
        ("astronaut", (170, 110, 370, 310)),  # 200 px
        ("coffee", (150, 60, 470, 380)),  # 320 px: two thirds of the short side
        ("astronaut", (160, 10, 460, 470)),  # 460 px tall: nearly the whole short side
    ],
)
def test_finds_the_product_at_several_scales(template_matcher, background, kind, box):
    product = product_image(kind)
    x0, y0, x1, y1 = box
    if (x1 - x0) != (y1 - y0):  # keep the product square; centre it in the box
        side = min(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        box = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
    scene = paste(background, product, box)
    result = template_matcher.match(matcher.Reference.from_image(product), scene)
    assert result.best is not None, "nothing found"
    assert iou(result.best.box, box) >= 0.8, (result.best.box, box)


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 90, 90),  # top-left corner
        (550, 200, 640, 290),  # right edge
        (300, 400, 380, 480),  # bottom edge
        (0, 350, 130, 480),  # bottom-left corner, larger
    ],
)
def test_finds_the_product_at_the_borders(template_matcher, background, box):
    product = product_image("astronaut")
    scene = paste(background, product, box)
    result = template_matcher.match(matcher.Reference.from_image(product), scene)
    assert result.best is not None
    assert iou(result.best.box, box) >= 0.8, (result.best.box, box)


def test_finds_both_copies(template_matcher, background):
    product = product_image("coffee")
    boxes = [(60, 80, 180, 200), (380, 220, 540, 380)]
    scene = background
    for box in boxes:
        scene = paste(scene, product, box)
    result = template_matcher.match(matcher.Reference.from_image(product), scene, max_instances=5)
    found = [inst.box for inst in result.instances]
    for box in boxes:
        assert max(iou(f, box) for f in found) >= 0.8, (found, box)
    top_two = result.instances[:2]
    assert {max(range(2), key=lambda i: iou(inst.box, boxes[i])) for inst in top_two} == {0, 1}


def test_reference_box_inside_a_larger_photo(template_matcher, background):
    """The reference is a box in a bigger image (a catalog photo with surroundings)."""
    photo = clutter_scene(300, 400, seed=11)
    product = product_image("astronaut")
    ref_box = (120, 60, 240, 180)
    photo = paste(photo, product, ref_box)
    scene_box = (350, 150, 500, 300)
    scene = paste(background, product, scene_box)
    ref = matcher.Reference.from_image(photo, box=ref_box)
    result = template_matcher.match(ref, scene)
    assert result.best is not None and iou(result.best.box, scene_box) >= 0.8


def test_absent_product_is_not_reported(template_matcher, background):
    ref = matcher.Reference.from_image(product_image("astronaut"))
    result = template_matcher.match(ref, background)
    assert result.instances == ()


def test_results_are_sorted_capped_and_inside_the_scene(template_matcher, background):
    product = product_image("coffee")
    scene = paste(paste(background, product, (0, 0, 100, 100)), product, (500, 300, 640, 440))
    ref = matcher.Reference.from_image(product)
    result = template_matcher.match(ref, scene, max_instances=1, score_threshold=0.0)
    assert len(result.instances) == 1
    result = template_matcher.match(ref, scene, max_instances=20, score_threshold=0.0)
    scores = [i.score for i in result.instances]
    assert scores == sorted(scores, reverse=True) and 2 <= len(scores) <= 20
    for inst in result.instances:
        x0, y0, x1, y1 = inst.box
        assert 0 <= x0 < x1 <= SCENE_W and 0 <= y0 < y1 <= SCENE_H
        assert 0.0 <= inst.score <= 1.0


def test_tiling_finds_the_same_instances(background):
    """A small working size forces tiles; results must match the one-pass search."""
    product = product_image("astronaut")
    boxes = [(20, 30, 140, 150), (430, 280, 620, 470)]
    scene = background
    for box in boxes:
        scene = paste(scene, product, box)
    ref = matcher.Reference.from_image(product)
    whole = siamfc_template_matcher().match(ref, scene, max_instances=2)
    tiled = siamfc_template_matcher(**{"inference.match.working_size": 300}).match(
        ref, scene, max_instances=2
    )
    assert len(whole.instances) == len(tiled.instances) == 2
    for a, b in zip(whole.instances, tiled.instances, strict=True):
        assert iou(a.box, b.box) > 0.95 and abs(a.score - b.score) < 1e-3


def test_large_scene_is_tiled_and_searched(template_matcher):
    background = clutter_scene(900, 1400, seed=5)
    product = product_image("coffee")
    box = (1180, 700, 1300, 820)
    scene = paste(background, product, box)
    result = template_matcher.match(matcher.Reference.from_image(product), scene)
    assert result.best is not None and iou(result.best.box, box) >= 0.8


def test_match_many_equals_individual_matches(template_matcher, background):
    kinds = ["astronaut", "coffee", "rocket"]
    scene = background
    for i, kind in enumerate(kinds):
        scene = paste(
            scene, product_image(kind), (20 + 200 * i, 40 + 90 * i, 140 + 200 * i, 160 + 90 * i)
        )
    refs = [matcher.Reference.from_image(product_image(k), id=k) for k in kinds]
    refs.append(refs[0])  # the same reference twice in one batch
    many = template_matcher.match_many(refs, scene, max_instances=3, score_threshold=0.3)
    assert len(many) == 4
    alone_of = {
        ref.id: template_matcher.match(ref, scene, max_instances=3, score_threshold=0.3)
        for ref in refs[:3]
    }
    for ref, got in zip(refs, many, strict=True):
        alone = alone_of[ref.id]
        assert got.reference_id == ref.id
        assert len(got.instances) == len(alone.instances)
        for a, b in zip(got.instances, alone.instances, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-5


class _Recording(MatchDecoder):
    """Wraps a decoder and keeps, per call, the maps of the reference it decoded."""

    def __init__(self, inner: MatchDecoder) -> None:
        self.inner = inner
        self.calls: list[list[tuple[float, torch.Tensor, dict]]] = []

    def decode(self, levels, row, ref, *, threshold, top_k):
        self.calls.append(
            [(lv.scale, lv.covered, {k: v[row] for k, v in lv.outputs.items()}) for lv in levels]
        )
        return self.inner.decode(levels, row, ref, threshold=threshold, top_k=top_k)


def _one_recipe_per_architecture() -> list[str]:
    """The tracking recipes, one per distinct (model, match settings) pair: recipes that
    differ only in tracking hyper-parameters compute the same maps."""
    first: dict[tuple[str, str], str] = {}
    for name in matcher.list_recipes():
        recipe = matcher.load_recipe(name)
        if recipe.inference.track:
            first.setdefault((repr(recipe.model), repr(recipe.inference.match)), name)
    return sorted(first.values())


@pytest.mark.parametrize("name", _one_recipe_per_architecture())
def test_match_many_computes_the_same_maps_for_every_recipe(name):
    """Real architectures (random weights): sharing the scene pass changes no number."""
    torch.manual_seed(0)
    overrides = [
        "inference.match.min_object_fraction=0.5",
        "inference.match.scale_step=2.0",
        # every level in full (the coarse-to-fine search has its own test of this)
        "inference.match.coarse_to_fine=false",
    ]
    m = matcher.build(name, overrides=overrides)  # a short pyramid: two levels a reference
    m.decoder = recorder = _Recording(m.decoder)
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)
    refs = [  # two shapes: a batch with different template sizes and aspect ratios
        matcher.Reference.from_image(rng.integers(0, 256, (40 + 50 * i, 90, 3), dtype=np.uint8))
        for i in range(2)
    ]
    m.match_many(refs, scene)
    shared = recorder.calls
    recorder.calls = []
    for ref in refs:
        m.match(ref, scene)
    alone = recorder.calls
    assert len(shared) == len(alone) == 2
    for levels_many, levels_one in zip(shared, alone, strict=True):
        assert len(levels_one) >= 2
        assert [lv[0] for lv in levels_many] == pytest.approx([lv[0] for lv in levels_one])
        for (_, cov_m, out_m), (_, cov_o, out_o) in zip(levels_many, levels_one, strict=True):
            assert torch.equal(cov_m, cov_o)
            for key, value in out_o.items():
                torch.testing.assert_close(out_m[key], value, rtol=1e-4, atol=1e-4)


def test_encoded_reference_is_reusable_and_checked(background):
    m = siamfc_template_matcher()
    product = product_image("astronaut")
    scene = paste(background, product, (100, 100, 200, 200))
    feats = m.encode_reference(matcher.Reference.from_image(product))
    assert iou(m.match(feats, scene).best.box, (100, 100, 200, 200)) >= 0.8
    other = matcher.build("siamrpnpp_alexnet")
    with pytest.raises(InvalidArgumentError, match="encoded by"):
        other.match(feats, scene)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_instances": 0}, "max_instances"),
        ({"max_instances": 1000}, "max_instances"),
        ({"max_instances": 2.5}, "integer"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"score_threshold": float("nan")}, "score_threshold"),
        ({"score_threshold": "high"}, "number"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message, background):
    m = siamfc_template_matcher()
    ref = matcher.Reference.from_image(product_image("coffee"))
    with pytest.raises(InvalidArgumentError, match=message):
        m.match(ref, background, **kwargs)


def test_bad_scene_and_reference_are_refused():
    m = siamfc_template_matcher()
    ref = matcher.Reference.from_image(product_image("coffee"))
    with pytest.raises(InvalidImageError):
        m.match(ref, b"garbage")
    with pytest.raises(InvalidArgumentError, match="Reference"):
        m.match(product_image("coffee"), product_image("coffee"))


def test_tiny_scene_does_not_crash():
    m = siamfc_template_matcher()
    ref = matcher.Reference.from_image(product_image("coffee"))
    result = m.match(ref, np.zeros((3, 2, 3), np.uint8))
    assert result.scene_size == (3, 2)
    for inst in result.instances:
        assert 0 <= inst.box[0] < inst.box[2] <= 2


def test_box_voting_keeps_a_box_whose_neighbours_all_score_zero():
    """Scores underflow to 0 for references far from every anchor's shape (a 5000x1 strip);
    the score-weighted mean of such a box's neighbours was 0/0 = NaN (issue 18)."""
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50, 50, 60, 60]])
    scores = torch.tensor([0.0, 0.0, 0.5])
    voted = _box_voting(boxes, scores, torch.tensor([0, 2]), 0.5)
    assert torch.isfinite(voted).all()
    assert torch.equal(voted[0], boxes[0]) and torch.equal(voted[1], boxes[2])
    weighted = _box_voting(boxes, torch.tensor([1.0, 3.0, 0.5]), torch.tensor([1]), 0.5)
    assert torch.allclose(weighted[0], torch.tensor([0.75, 0.75, 10.75, 10.75]))
