"""SiamFC++ in match mode and on synthetic tracking, with an exact template matcher.

The SiamFC++ head sits on the parameter-free pixel backbone with weights that make it a
normalised template matcher (``tests/helpers.py``), so a miss is a fault of the head's
wiring, the point decoder, the score-map geometry or the search machinery, not of
training. Also: the head's three pairing modes, the decoder's coordinate mapping on
hand-made maps, and the network builder's refusals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import matcher
from matcher.errors import ConfigError
from matcher.inference.decode import LevelOutputs, ReferenceGeometry
from matcher.inference.point_decoder import PointDecoder
from matcher.models.builders import build_siamese_net
from matcher.models.heads.siamfcpp import SiamFCppHead
from tests.helpers import (
    clutter_scene,
    iou,
    paste,
    product_image,
    siamfcpp_template_matcher,
)

SCENE_H, SCENE_W = 480, 640


@pytest.fixture(scope="module")
def template_matcher():
    return siamfcpp_template_matcher()


@pytest.fixture(scope="module")
def background():
    return clutter_scene(SCENE_H, SCENE_W, seed=3)


# -- match mode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, box",
    [
        ("astronaut", (292, 212, 348, 268)),  # 56 px: 0.12 of the short side
        ("coffee", (265, 185, 375, 295)),  # 110 px
        ("astronaut", (170, 110, 370, 310)),  # 200 px
        ("coffee", (150, 60, 470, 380)),  # 320 px: two thirds of the short side
        ("astronaut", (90, 15, 540, 465)),  # 450 px: nearly the whole short side
    ],
)
def test_finds_the_product_at_several_scales(template_matcher, background, kind, box):
    product = product_image(kind)
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


def test_absent_product_is_not_reported(template_matcher, background):
    ref = matcher.Reference.from_image(product_image("astronaut"))
    assert template_matcher.match(ref, background).instances == ()


def test_match_many_equals_individual_matches(template_matcher, background):
    kinds = ["astronaut", "coffee", "rocket"]
    scene = background
    for i, kind in enumerate(kinds):
        scene = paste(
            scene, product_image(kind), (20 + 150 * i, 40 + 60 * i, 140 + 150 * i, 160 + 60 * i)
        )
    refs = [matcher.Reference.from_image(product_image(k), id=k) for k in kinds]
    refs.append(refs[0])  # the same reference twice in one batch
    many = template_matcher.match_many(refs, scene, max_instances=3, score_threshold=0.3)
    assert len(many) == 4
    alone_of = {
        ref.id: template_matcher.match(ref, scene, max_instances=3, score_threshold=0.3)
        for ref in refs[:3]
    }
    for i, (ref, got) in enumerate(zip(refs, many, strict=True)):
        alone = alone_of[ref.id]
        assert got.reference_id == ref.id
        assert len(got.instances) == len(alone.instances)
        for a, b in zip(got.instances, alone.instances, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-5
        j = i % 3
        box = (20 + 150 * j, 40 + 60 * j, 140 + 150 * j, 160 + 60 * j)
        assert got.best is not None and iou(got.best.box, box) >= 0.8


# -- tracking mode -----------------------------------------------------------------------


@pytest.mark.parametrize("tracker_name", ["siamfcpp", "siamfcpp_osdet"])
def test_tracker_follows_a_moving_product(tracker_name):
    m = siamfcpp_template_matcher(**{"inference.track.tracker": tracker_name})
    background = clutter_scene(360, 480, seed=7)
    product = product_image("coffee")
    boxes = [(150 + 13 * t, 100 + 9 * t, 250 + 13 * t, 200 + 9 * t) for t in range(4)]
    frames = [paste(background, product, box) for box in boxes]
    tracker = m.tracker()
    tracker.init(frames[0], boxes[0])
    for frame, box in zip(frames[1:], boxes[1:], strict=True):
        inst = tracker.track(frame)
        assert iou(inst.box, box) >= 0.8, (inst.box, box)
        assert inst.score > 0.5


# -- the head's batch pairing ------------------------------------------------------------


def test_head_pairs_batches_like_the_xcorr_ops():
    torch.manual_seed(0)
    head = SiamFCppHead(in_channels=8, hidden=8, num_convs=2, conv_bn=(False, True)).eval()
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0, 0.05)
        z = [torch.randn(3, 8, 6, 6)]
        x = [torch.randn(3, 8, 14, 14)]
        zk, xk = head.encode_template(z), head.encode_search(x)

        def one(i, j):
            return head.correlate([t[i : i + 1] for t in zk], [t[j : j + 1] for t in xk])

        pairs = head.correlate(zk, xk)  # K == B
        one_search = head.correlate(zk, [t[:1] for t in xk])  # B == 1
        one_template = head.correlate([t[:1] for t in zk], xk)  # K == 1
        for key in ("cls", "ctr", "offsets"):
            assert pairs[key].shape[-2:] == (14 - 6 + 1 - 4,) * 2
            for i in range(3):
                for got, want in (
                    (pairs[key][i : i + 1], one(i, i)[key]),
                    (one_search[key][i : i + 1], one(i, 0)[key]),
                    (one_template[key][i : i + 1], one(0, i)[key]),
                ):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        assert (pairs["offsets"] > 0).all()


# -- the point decoder -------------------------------------------------------------------


def _level(cls: torch.Tensor, ctr: torch.Tensor, offsets: torch.Tensor, covered=None):
    gy, gx = cls.shape
    return LevelOutputs(
        scale=0.5,
        pad=20,
        offset=71.0,
        stride=8,
        outputs={"cls": cls[None, None], "ctr": ctr[None, None], "offsets": offsets[None]},
        covered=torch.ones(gy, gx, dtype=torch.bool) if covered is None else covered,
    )


def test_point_decoder_maps_cells_to_scene_boxes():
    cls = torch.full((4, 5), -20.0)
    cls[2, 3], cls[1, 0] = 3.0, 2.0
    ctr = torch.full((4, 5), 1.5)
    offsets = torch.zeros(4, 4, 5)
    offsets[:, 2, 3] = torch.tensor([10.0, 20.0, 30.0, 40.0])
    offsets[:, 1, 0] = torch.tensor([5.0, 5.0, 5.0, 5.0])
    boxes, scores = PointDecoder(penalty_k=0.0).decode(
        [_level(cls, ctr, offsets)], 0, ReferenceGeometry(40.0, 60.0), threshold=0.3, top_k=10
    )
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # cell (2, 3): centre (71 + 24, 71 + 16) = (95, 87) in the padded level;
    # box (85, 67, 125, 127); scene = (box - pad 20) / scale 0.5.
    np.testing.assert_allclose(boxes[0], [130, 94, 210, 214], atol=1e-4)
    np.testing.assert_allclose(scores[0], sig(3.0) * sig(1.5), atol=1e-6)
    # cell (1, 0): centre (71, 79), box (66, 74, 76, 84)
    np.testing.assert_allclose(boxes[1], [92, 108, 112, 128], atol=1e-4)
    assert len(scores) == 2


def test_point_decoder_threshold_coverage_penalty_and_top_k():
    cls = torch.full((3, 3), 4.0)
    ctr = torch.full((3, 3), 4.0)
    offsets = torch.full((4, 3, 3), 20.0)  # 40 x 40 boxes
    offsets[:, 0, 0] = torch.tensor([10.0, 30.0, 10.0, 30.0])  # 20 x 60: another shape
    covered = torch.ones(3, 3, dtype=torch.bool)
    covered[2, 2] = False
    level = _level(cls, ctr, offsets, covered)
    ref = ReferenceGeometry(40.0, 40.0)
    _, plain = PointDecoder(penalty_k=0.0).decode([level], 0, ref, threshold=0.5, top_k=100)
    assert len(plain) == 8  # the uncovered cell is not reported
    boxes, scores = PointDecoder(penalty_k=0.1).decode([level], 0, ref, threshold=0.5, top_k=100)
    odd = np.argmin(scores)
    # cell (0, 0): centre (71, 71), box (61, 41, 81, 101) in the padded level
    assert np.allclose(boxes[odd], [82, 42, 122, 162])
    assert scores[odd] < plain.max() and np.isclose(np.delete(scores, odd), plain.max()).all()
    _, few = PointDecoder(penalty_k=0.0).decode([level], 0, ref, threshold=0.5, top_k=3)
    assert len(few) == 3
    _, none = PointDecoder(penalty_k=0.0).decode([level], 0, ref, threshold=0.99999, top_k=3)
    assert len(none) == 0


# -- building ----------------------------------------------------------------------------


def test_the_generic_builder_builds_siamfcpp_and_checks_its_towers():
    recipe = matcher.load_recipe("siamfcpp_alexnet")
    net = build_siamese_net(recipe.model)
    assert net.head.num_convs == 3 and len(net.head.tower("cls")) == 3
    with pytest.raises(ConfigError, match="conv_bn"):
        matcher.build("siamfcpp_alexnet", overrides=["model.head.conv_bn=[true]"])
