"""The classical baselines: they find textured products, stay silent otherwise, and fail typed."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

import matcher
from matcher.baselines import BASELINES, SiftMatcher, TemplateMatcher, list_baselines
from matcher.baselines.homography import plausible_quad, project
from matcher.baselines.sift import inlier_score
from tests.helpers import clutter_scene, iou, paste, product_image

NAMES = list_baselines()


def warp_into(scene: np.ndarray, product: np.ndarray, corners: np.ndarray):
    """Paste ``product`` into a copy of ``scene`` so its corners land on ``corners``.

    Returns the scene, the true box (bounding box of the corners) and the true mask.
    """
    h, w = product.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    homography = cv2.getPerspectiveTransform(src, np.float32(corners))
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(product, homography, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((h, w), np.uint8), homography, size) > 0
    out = scene.copy()
    out[mask] = warped[mask]
    box = (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )
    return out, box, mask


@pytest.fixture(scope="module")
def product():
    return product_image("astronaut")


@pytest.fixture(scope="module")
def reference(product):
    return matcher.Reference.from_image(product, id="astro")


def test_registry_lists_both_baselines():
    assert set(NAMES) == {"baseline_sift", "baseline_template"}
    for name in NAMES:
        assert name in BASELINES


@pytest.mark.parametrize("name", NAMES)
def test_load_by_name_without_weights(name):
    m = matcher.load(name)
    assert m.name == name
    assert isinstance(m, SiftMatcher if name == "baseline_sift" else TemplateMatcher)
    assert sum(p.numel() for p in m.net.parameters()) == 0


@pytest.mark.parametrize("name", NAMES)
def test_finds_product_pasted_at_known_scale(name, reference, product):
    box = (210, 60, 330, 180)  # 200 px product at 0.6x
    scene = paste(clutter_scene(300, 420, seed=7), product, box)
    result = matcher.load(name).match(reference, scene)
    assert result.scene_size == (300, 420)
    assert result.reference_id == "astro"
    assert result.best is not None
    assert iou(result.best.box, box) >= 0.8
    assert 0.0 <= result.best.score <= 1.0


def test_sift_finds_product_under_perspective_with_quad_mask(reference, product):
    corners = np.array([[150, 70], [300, 90], [292, 250], [142, 236]], np.float64)
    scene, box, truth = warp_into(clutter_scene(320, 440, seed=3), product, corners)
    result = matcher.load("baseline_sift").match(reference, scene)
    best = result.best
    assert best is not None
    assert iou(best.box, box) >= 0.8
    assert best.mask is not None and best.mask.shape == (320, 440)
    inter = np.logical_and(best.mask, truth).sum()
    assert inter / np.logical_or(best.mask, truth).sum() >= 0.8
    assert best.polygon is not None and len(best.polygon) == 4
    err = np.abs(np.array(best.polygon) - corners).max()
    assert err < 6.0


@pytest.mark.parametrize("name", NAMES)
def test_absent_product_gives_nothing(name, reference):
    scene = clutter_scene(300, 420, seed=11)
    result = matcher.load(name).match(reference, scene)
    assert result.instances == ()


@pytest.mark.parametrize("name", NAMES)
def test_two_copies_give_two_instances(name, reference, product):
    boxes = [(20, 40, 140, 160), (260, 120, 380, 240)]
    scene = clutter_scene(300, 420, seed=5)
    for b in boxes:
        scene = paste(scene, product, b)
    result = matcher.load(name).match(reference, scene, max_instances=5)
    assert len(result.instances) >= 2
    found = result.instances[:2]
    for b in boxes:
        assert max(iou(inst.box, b) for inst in found) >= 0.8
    scores = [inst.score for inst in result.instances]
    assert scores == sorted(scores, reverse=True)
    capped = matcher.load(name).match(reference, scene, max_instances=1)
    assert len(capped.instances) == 1


@pytest.mark.parametrize("name", NAMES)
def test_flat_images_give_empty_results(name, reference):
    m = matcher.load(name)
    flat = np.full((200, 260, 3), 128, np.uint8)
    assert m.match(reference, flat).instances == ()
    flat_ref = matcher.Reference.from_image(np.full((80, 60, 3), 200, np.uint8))
    assert m.match(flat_ref, clutter_scene(200, 260, seed=1)).instances == ()


@pytest.mark.parametrize("name", NAMES)
def test_tiny_images_give_empty_results(name, product):
    m = matcher.load(name)
    tiny_ref = matcher.Reference.from_image(product[:5, :4])
    assert m.match(tiny_ref, clutter_scene(120, 160, seed=2)).instances == ()
    ref = matcher.Reference.from_image(product)
    result = m.match(ref, product[:6, :7])
    assert result.instances == ()
    assert result.scene_size == (6, 7)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_typed_errors(name, reference):
    m = matcher.load(name)
    scene = clutter_scene(100, 120, seed=0)
    with pytest.raises(matcher.InvalidArgumentError):
        m.match(np.zeros((10, 10, 3), np.uint8), scene)
    with pytest.raises(matcher.InvalidImageError):
        m.match(reference, "no/such/scene.png")
    with pytest.raises(matcher.InvalidImageError):
        m.match(reference, np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(matcher.InvalidArgumentError):
        m.match(reference, scene, score_threshold=1.5)
    with pytest.raises(matcher.InvalidArgumentError):
        m.match(reference, scene, max_instances=0)
    with pytest.raises(matcher.InvalidArgumentError):
        m.tracker()


@pytest.mark.parametrize("name", NAMES)
def test_weights_and_bad_overrides_are_refused(name):
    with pytest.raises(matcher.InvalidArgumentError):
        matcher.load(name, "weights.pth")
    with pytest.raises(matcher.ConfigError, match="score_threshold"):
        matcher.load(name, overrides=["score_treshold=0.3"])
    with pytest.raises(matcher.ConfigError):
        matcher.load(name, overrides=["score_threshold=abc"])
    with pytest.raises(matcher.ConfigError):
        matcher.load(name, overrides=["score_threshold=2.0"])
    with pytest.raises(matcher.ConfigError):
        matcher.load(name, overrides=["max_instances"])


@pytest.mark.parametrize("name", NAMES)
def test_overrides_change_the_defaults(name, reference, product):
    m = matcher.load(name, overrides=["max_instances=1", "score_threshold=0.01"])
    assert m.params.max_instances == 1
    assert m.params.score_threshold == pytest.approx(0.01)
    scene = clutter_scene(300, 420, seed=5)
    for b in [(20, 40, 140, 160), (260, 120, 380, 240)]:
        scene = paste(scene, product, b)
    assert len(m.match(reference, scene).instances) == 1


@pytest.mark.parametrize("name", NAMES)
def test_encoded_reference_and_match_many(name, reference, product):
    m = matcher.load(name)
    box = (200, 50, 320, 170)
    scene = paste(clutter_scene(260, 380, seed=9), product, box)
    feats = m.encode_reference(reference)
    direct = m.match(reference, scene)
    reused = m.match(feats, scene)
    assert [i.box for i in reused.instances] == [i.box for i in direct.instances]
    other = matcher.Reference.from_image(product_image("rocket"), id="rocket")
    both = m.match_many([reference, other], scene)
    assert [r.reference_id for r in both] == ["astro", "rocket"]
    assert iou(both[0].best.box, box) >= 0.8
    assert both[1].instances == ()
    assert m.match_many([], scene) == []
    stranger = matcher.load(next(n for n in NAMES if n != name)).encode_reference(reference)
    with pytest.raises(matcher.InvalidArgumentError):
        m.match(stranger, scene)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_unchanged_and_results_deterministic(name, reference, product):
    scene = paste(clutter_scene(260, 380, seed=4), product, (30, 30, 150, 150))
    scene_copy, ref_copy = scene.copy(), reference.image.copy()
    m = matcher.load(name)
    first = m.match(reference, scene)
    second = matcher.load(name).match(reference, scene)
    assert np.array_equal(scene, scene_copy)
    assert np.array_equal(reference.image, ref_copy)
    assert [(i.box, i.score) for i in first.instances] == [
        (i.box, i.score) for i in second.instances
    ]


def test_inlier_score_mapping():
    assert inlier_score(4, scale=8.0) == 0.0
    assert inlier_score(3, scale=8.0) == 0.0
    assert inlier_score(12, scale=8.0) == pytest.approx(1 - math.exp(-1.0))
    values = [inlier_score(n, scale=8.0) for n in range(4, 60)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] < 1.0


def test_plausible_quad_rejects_degenerate_views():
    size, scene = (100.0, 100.0), (400, 400)
    good = np.array([[100, 100], [200, 110], [195, 210], [105, 200]], float)
    args = {"reference_size": size, "scene_size": scene, "max_anisotropy": 3.0, "min_side": 8.0}
    assert plausible_quad(good, **args)
    assert not plausible_quad(good[[1, 0, 3, 2]], **args)  # mirrored
    assert not plausible_quad(good[[0, 2, 1, 3]], **args)  # self-intersecting
    assert not plausible_quad(np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float), **args)
    thin = np.array([[100, 100], [300, 100], [300, 110], [100, 110]], float)
    assert not plausible_quad(thin, **args)  # aspect 20:1 for a square reference
    keystone = np.array([[100, 100], [300, 100], [220, 150], [180, 150]], float)
    assert not plausible_quad(keystone, **args)  # opposite sides 5:1
    outside = good + np.array([370.0, 0.0])
    assert not plausible_quad(outside, **args)
    assert not plausible_quad(np.full((4, 2), np.nan), **args)


def test_project_applies_homography():
    homography = np.array([[2.0, 0, 10], [0, 3.0, -5], [0, 0, 1]])
    out = project(homography, np.array([[1.0, 1.0], [0.0, 2.0]]))
    np.testing.assert_allclose(out, [[12.0, -2.0], [10.0, 1.0]])


def test_template_levels_cover_the_size_range():
    m = matcher.load("baseline_template")
    p = m.params
    exps = m.level_exponents((480, 640))
    assert exps == sorted(exps, reverse=True)
    scales = [p.scale_step**j for j in exps]
    # The template's longer side at those scales spans products from 10 % to 100 % of 480.
    smallest_product = p.template_side / max(scales)
    largest_product = p.template_side / min(scales)
    assert smallest_product <= 0.1 * 480 * 1.0001
    assert largest_product >= 480 * 0.9999
    assert max(scales) <= p.max_upscale
