"""Match mode's verification stage (matcher/inference/verify.py): score combination,
re-ranking, recipe wiring and the features it adds to a reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

import matcher
from matcher.crops import square_crop
from matcher.embedder import build_embedder, save_embedder
from matcher.errors import (
    CheckpointError,
    ConfigError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
)
from matcher.images import ImageLimits
from matcher.inference.match import Candidate
from matcher.inference.verify import Verifier, combine_scores, resolve_verifier_path
from tests.helpers import clutter_scene, iou, paste, product_image, rpn_template_matcher

COFFEE_BOX = (40, 50, 120, 130)
ROCKET_BOX = (200, 60, 280, 140)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    base = clutter_scene(240, 320, seed=3)
    return paste(
        paste(base, product_image("coffee"), COFFEE_BOX), product_image("rocket"), ROCKET_BOX
    )


@pytest.fixture(scope="module")
def embedder():
    return build_embedder().eval()


def test_combine_scores_spans_siamese_only_to_similarity_only():
    sim = np.array([0.9, -0.3, 0.5])
    siamese = np.array([0.2, 0.8, 1.0])
    assert np.allclose(combine_scores(sim, siamese, 0.0), siamese)
    assert np.allclose(combine_scores(sim, siamese, 1.0), [0.9, 0.0, 0.5])  # floored at 0
    half = combine_scores(sim, siamese, 0.5)
    assert np.allclose(half, np.sqrt([0.9 * 0.2, 0.0, 0.5 * 1.0]))
    assert ((half >= 0) & (half <= 1)).all()


def test_rescore_puts_the_reference_look_alike_first(scene, embedder):
    reference = product_image("coffee")
    verifier = Verifier(embedder=embedder, weight=1.0, context=0.1)
    ref_vec = verifier.embed_reference(reference, (0, 0, *reference.shape[1::-1]))
    # The Siamese stage (here: made-up scores) prefers the wrong product.
    cands = [Candidate(ROCKET_BOX, 0.9), Candidate(COFFEE_BOX, 0.4)]
    out = verifier.rescore(ref_vec, scene, cands)
    assert out[0].box == COFFEE_BOX
    expected = embedder.embed([square_crop(scene, b, 0.1) for b in (COFFEE_BOX, ROCKET_BOX)])
    assert out[0].score == pytest.approx(max(float(expected[0] @ ref_vec), 0.0), abs=1e-5)
    assert out[1].score == pytest.approx(max(float(expected[1] @ ref_vec), 0.0), abs=1e-5)
    # weight 0: the Siamese order and scores stay.
    siamese_only = Verifier(embedder=embedder, weight=0.0, context=0.1)
    kept = siamese_only.rescore(ref_vec, scene, cands)
    assert [c.box for c in kept] == [ROCKET_BOX, COFFEE_BOX]
    assert [c.score for c in kept] == pytest.approx([0.9, 0.4])
    assert verifier.rescore(ref_vec, scene, []) == []


def test_square_crop_of_a_box_outside_the_image_is_not_empty():
    # (centring and clipping: tests/trainers/test_retrieval.py)
    image = np.arange(100 * 120 * 3, dtype=np.uint8).reshape(100, 120, 3)
    assert square_crop(image, (500, 500, 510, 510), 0.0).shape[:2] == (1, 1)
    assert square_crop(image, (-50, -50, -40, -40), 0.0).shape[:2] == (1, 1)


def test_square_crop_refuses_non_finite_boxes():
    image = np.zeros((10, 10, 3), np.uint8)
    for box in ((0, 0, float("nan"), 5), (0, float("-inf"), 5, float("inf"))):
        with pytest.raises(InvalidBoxError, match="non-finite"):
            square_crop(image, box, 0.1)


def test_thin_reference_matches_without_nan(scene):
    """Issue 18: a 5000x1 reference made the shipped matcher's box voting divide 0 by 0
    (every candidate's score underflowed) and ``square_crop`` fail on the NaN box. The
    image limits now refuse such references; past them, the match still completes."""
    shipped = matcher.load("siammask_small")
    strip = np.full((1, 5000, 3), 128, np.uint8)
    with pytest.raises(ImageTooThinError):
        matcher.Reference.from_image(strip)
    reference = matcher.Reference.from_image(strip, limits=ImageLimits(max_aspect=math.inf))
    result = shipped.match(reference, scene, score_threshold=0.0)
    assert all(np.isfinite(inst.box).all() for inst in result.instances)


def test_matcher_with_verifier_scores_by_similarity(scene, embedder):
    m = rpn_template_matcher(**{"inference.match.scale_step": 1.1})
    ref = matcher.Reference.from_image(product_image("coffee"))
    plain = m.match(ref, scene, max_instances=3, score_threshold=0.3)
    assert iou(plain.best.box, COFFEE_BOX) > 0.7

    m.verifier = Verifier(embedder=embedder, weight=1.0, context=0.1)
    feats = m.encode_reference(ref)
    assert feats.embedding is not None and feats.embedding.shape == (embedder.dim,)
    verified = m.match(feats, scene, max_instances=3, score_threshold=0.0)
    assert 1 <= len(verified.instances) <= 3
    assert iou(verified.best.box, COFFEE_BOX) > 0.7
    # Each score is the box's similarity to the reference, computed independently.
    boxes = [inst.box for inst in verified.instances]
    vectors = embedder.embed([square_crop(scene, b, 0.1) for b in boxes])
    ref_vec = embedder.embed([square_crop(ref.image, ref.box, 0.1)])[0]
    expected = np.clip(vectors @ ref_vec, 0.0, 1.0)
    got = np.array([inst.score for inst in verified.instances])
    assert np.allclose(got, expected, atol=1e-5)
    assert (np.diff(got) <= 1e-9).all()  # best first
    # The threshold applies to the verified score: one just above the lowest drops it.
    assert got.min() < got.max()
    thr = float(got.min()) + 1e-6
    kept = m.match(feats, scene, max_instances=3, score_threshold=thr).instances
    assert [k.score for k in kept] == pytest.approx([g for g in got if g >= thr], abs=1e-6)

    # Features without an embedding cannot feed a verifying matcher.
    m.verifier = None
    bare = m.encode_reference(ref)
    m.verifier = Verifier(embedder=embedder, weight=1.0, context=0.1)
    with pytest.raises(InvalidArgumentError, match="verifier embedding"):
        m.match(bare, scene)


def test_recipe_wiring_and_errors(tmp_path):
    shipped = matcher.load("siammask_small")
    assert shipped.verifier is not None
    assert shipped.verifier.source == str(resolve_verifier_path("embedder_default"))
    off = matcher.build("siammask_small", overrides=["inference.match.verifier="])
    assert off.verifier is None

    path = save_embedder(tmp_path / "emb.pth", build_embedder())
    own = matcher.build("siammask_small", overrides=[f"inference.match.verifier={path}"])
    assert own.verifier.source == str(path)

    with pytest.raises(CheckpointError, match="not shipped"):
        matcher.build("siammask_small", overrides=["inference.match.verifier=no_such_embedder"])
    with pytest.raises(CheckpointError, match="does not exist"):
        matcher.build("siammask_small", overrides=[f"inference.match.verifier={tmp_path}/x.pth"])
    # A matcher checkpoint is not an embedder.
    with pytest.raises(CheckpointError, match="not an embedder checkpoint"):
        matcher.build(
            "siammask_small",
            overrides=[f"inference.match.verifier={matcher.shipped_weights('siammask_small')}"],
        )
    for bad in ("verifier_weight=1.5", "verifier_candidates=0", "verifier_context=-1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            matcher.build("siammask_small", overrides=[f"inference.match.{bad}"])
    with pytest.raises(ConfigError, match="siam_mask_rcnn"):
        matcher.build(
            "tiny/siam_mask_rcnn", overrides=["inference.match.verifier=embedder_default"]
        )


def test_match_many_embeds_each_scene_square_once(scene):
    """References of one ``match_many`` share the scene: a square another reference has
    already embedded is not embedded again, and the results equal one match each."""
    shipped = matcher.load("siammask_small")
    refs = [
        matcher.Reference.from_image(product_image(kind), id=kind)
        for kind in ("coffee", "rocket", "coffee")
    ]
    embedded: list[int] = []
    inner = shipped.verifier.embedder.embed

    def counting(images, **kwargs):
        embedded.append(len(images))
        return inner(images, **kwargs)

    shipped.verifier.embedder.embed = counting
    alone = [shipped.match(ref, scene, score_threshold=0.0) for ref in refs]
    embedded_alone = sum(embedded)
    embedded.clear()
    many = shipped.match_many(refs, scene, score_threshold=0.0)
    # the third reference repeats the first: none of its squares is embedded again
    assert 0 < sum(embedded) <= embedded_alone * 2 // 3 + 1
    for got, want in zip(many, alone, strict=True):
        assert len(got.instances) == len(want.instances) > 0
        for a, b in zip(got.instances, want.instances, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-4
    # outside match_many nothing is remembered: the same match embeds its squares again
    embedded.clear()
    shipped.match(refs[0], scene, score_threshold=0.0)
    assert sum(embedded) > 0


def test_catalog_search_verifies_with_its_own_settings():
    """``match_many(catalog_search=True)`` is ``match_many`` with the recipe's
    ``inference.catalog_search`` values in place of its match settings (the default's: 8
    embedder-verified and 5 homography-checked boxes), and the plain call is unchanged."""
    from matcher.inference_config import CatalogSearchConfig, MatchConfig

    product = product_image("coffee")
    box = (250, 160, 390, 300)
    scene = paste(clutter_scene(480, 640, seed=3), product, box)
    refs = [matcher.Reference.from_image(p) for p in (product, product_image("rocket"))]
    shipped = matcher.load_trained("siammask_small")
    cfg = shipped.catalog_cfg
    assert (cfg.verifier_candidates, cfg.geometric_candidates) == (8, 5)
    pairs = (("verifier", 8), ("geometric", 5))
    same = matcher.load_trained(
        "siammask_small", overrides=[f"inference.match.{k}_candidates={v}" for k, v in pairs]
    )
    feats = [shipped.encode_reference(r) for r in refs]
    plain = shipped.match_many(feats, scene)
    searched = shipped.match_many(feats, scene, catalog_search=True)
    expected = same.match_many([same.encode_reference(r) for r in refs], scene)
    for a, b in zip(searched, expected, strict=True):
        assert [(i.box, i.score) for i in a.instances] == [(i.box, i.score) for i in b.instances]
    assert plain[0].best is not None and searched[0].best is not None
    assert iou(searched[0].best.box, box) >= 0.7
    assert [(i.box, i.score) for i in plain[0].instances] == [
        (i.box, i.score) for i in shipped.match_many(feats, scene)[0].instances
    ]
    section, base = CatalogSearchConfig(geometric_candidates=3), MatchConfig()
    assert section.applied_to(base).geometric_candidates == 3
    assert section.applied_to(base).verifier_candidates == base.verifier_candidates
    assert CatalogSearchConfig().applied_to(base) is base


def test_catalog_search_settings_are_checked():
    from matcher.recipes import load_recipe

    recipe = load_recipe("siamrpnpp_alexnet", ["inference.catalog_search.verifier_candidates=4"])
    assert recipe.inference.catalog_search.verifier_candidates == 4
    assert recipe.inference.catalog_search.geometric_candidates is None
    for bad in ("verifier_candidates=0", "geometric_candidates=5000", "candidates=3"):
        with pytest.raises(ConfigError, match="catalog_search"):
            load_recipe("siamrpnpp_alexnet", [f"inference.catalog_search.{bad}"])
