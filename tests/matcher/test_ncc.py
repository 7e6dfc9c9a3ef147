"""The template-matching evidence of match mode (:mod:`matcher.inference.ncc`): the
correlation against a brute-force reference, candidate evidence and proposals on pasted
copies, its place in the fusion, and calibrations fitted with and without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import matcher
from matcher.baselines.template import ScenePyramid, correlate
from matcher.errors import ConfigError
from matcher.inference.evidence import fuse_candidates, iou_matrix
from matcher.inference.fusion import FEATURES, Calibration, colour_histogram
from matcher.inference.geometric import GeometricVerifier
from matcher.inference.ncc import NccParams, NccQuery, NccVerifier
from matcher.structures import Reference
from tests.helpers import clutter_scene, paste, product_image

PRODUCT = product_image("astronaut")  # 200 x 200, textured
BOX = (360, 120, 510, 270)  # where it is pasted, 150 x 150
UNRELATED = (40, 280, 190, 430)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return paste(clutter_scene(480, 640, seed=3), PRODUCT, BOX)


@pytest.fixture(scope="module")
def query(scene) -> NccQuery:
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(PRODUCT))
    return NccQuery(stage, ref, stage.prepare_scene(scene))


def _pearson(window: np.ndarray, pattern: np.ndarray) -> float:
    """Brute force ``TM_CCOEFF_NORMED`` over colour channels: each channel centred on its
    own mean, products summed over every pixel and channel."""
    a = window - window.mean(axis=(0, 1))
    b = pattern - pattern.mean(axis=(0, 1))
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_correlation_matches_a_brute_force_pearson_correlation():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (40, 50, 3)).astype(np.float32)
    pattern = rng.uniform(0, 255, (9, 12, 3)).astype(np.float32)
    pyramid = ScenePyramid.from_image(image.astype(np.uint8), colour=True)
    response = correlate(pyramid.image, pyramid.grey, pattern, min_std=3.0)
    assert response.shape == (40 - 9 + 1, 50 - 12 + 1)
    for y, x in [(0, 0), (5, 17), (31, 38)]:
        window = pyramid.image[y : y + 9, x : x + 12]
        assert response[y, x] == pytest.approx(_pearson(window, pattern), abs=1e-4)
    flat = np.full((40, 50), 7.0, np.float32)  # flat windows score 0, not NaN
    zero = correlate(np.repeat(flat[:, :, None], 3, axis=2), flat, pattern, min_std=3.0)
    assert np.all(zero == 0.0)


def test_an_exact_paste_scores_about_one_and_an_unrelated_region_low(query):
    stage, ref, prepared = query.verifier, query.reference, query.scene
    assert stage.correlation(ref, prepared, BOX) > 0.95
    assert stage.correlation(ref, prepared, UNRELATED) < 0.5
    # a loose box (shifted by a tenth of its size, 15 % too large) still finds it
    assert stage.correlation(ref, prepared, (345.0, 105.0, 517.0, 277.0)) > 0.85
    assert stage.correlation(ref, prepared, (10.0, 10.0, 11.0, 60.0)) == 0.0  # degenerate
    # the evidence: the excess over the floor (0.5), rescaled; none below it
    assert query.score(BOX) > 0.9
    assert query.score(UNRELATED) == 0.0


def test_proposals_find_a_pasted_copy_at_another_scale():
    small = (80, 300, 170, 390)  # 90 px: 0.6 of the reference's size
    scene = paste(clutter_scene(480, 640, seed=5), PRODUCT, small)
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(PRODUCT))
    found = stage.proposals(ref, stage.prepare_scene(scene), 3)
    assert 1 <= len(found) <= 3
    (box, score), *rest = found
    assert score > 0.8 and iou_matrix([box], [small])[0, 0] > 0.7
    assert all(s <= score for _, s in rest)


def test_enlarged_levels_are_resampled_from_the_original_photo():
    """A pattern finer than the downscaled copy can hold (2-pixel stripes, lost when the
    scene is halved) comes back at the level that enlarges the copy to the original size."""
    stripes = np.zeros((60, 80, 3), np.uint8)
    stripes[:, ::2] = 255
    halved = np.full((30, 40, 3), 128, np.uint8)  # what INTER_AREA makes of the stripes
    assert ScenePyramid.from_image(halved, colour=True).level(2.0)[1].std() < 1.0
    fine = ScenePyramid.from_image(halved, colour=True, fine=stripes)
    image, grey = fine.level(2.0)
    assert image.shape == (60, 80, 3) and grey.std() > 100.0
    assert np.array_equal(grey, stripes[:, :, 0].astype(np.float32))
    # levels that shrink the copy still come from the copy; a "fine" image that is not
    # larger than the copy is ignored
    assert fine.level(0.5)[1].std() < 1.0
    assert ScenePyramid.from_image(halved, colour=True, fine=halved).fine is None


def test_proposals_find_a_product_of_a_fourteenth_of_the_shorter_side():
    """34 px in a 640x480 photo (7.1 % of 480): below every level the Siamese pyramid of
    the default searches, and below what the proposals searched before (10 %); a cap of
    1.5 on the enlargement (the smallest product 43 px) misses it too."""
    tiny = (400, 200, 434, 234)
    scene = paste(clutter_scene(480, 640, seed=6), PRODUCT, tiny)
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(PRODUCT))
    found = stage.proposals(ref, stage.prepare_scene(scene), 1)
    assert len(found) == 1
    assert iou_matrix([found[0][0]], [tiny])[0, 0] >= 0.5
    for narrower in (NccParams(min_object_fraction=0.1), NccParams(max_upscale=1.5)):
        other = NccVerifier(narrower)
        missed = other.proposals(ref, other.prepare_scene(scene), 1)
        assert not missed or iou_matrix([missed[0][0]], [tiny])[0, 0] < 0.5


def test_a_flat_reference_gives_no_evidence(scene):
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(np.full((60, 80, 3), 200, np.uint8)))
    prepared = stage.prepare_scene(scene)
    assert ref.flat
    assert stage.proposals(ref, prepared, 3) == []
    assert stage.score(ref, prepared, BOX) == 0.0


def _fuse(scene, template):
    geo = GeometricVerifier()
    ref = Reference.from_image(PRODUCT)
    return fuse_candidates(
        image=scene,
        pool=[],
        embedding=None,
        colour=colour_histogram(PRODUCT),
        reference_geometry=geo.encode_reference(ref),
        scene_geometry=geo.prepare_scene(scene),
        verifier=None,
        geometric=geo,
        calibration=None,
        candidates=10,
        proposals=3,
        nms_iou=0.5,
        template=template,
        template_proposals=2,
    )


def test_the_fusion_adds_template_proposals_and_the_template_evidence(scene, query):
    fused = _fuse(scene, query)
    best = max(fused, key=lambda c: c.evidence["template"])
    assert best.source == "template"  # the Siamese pool was empty
    assert iou_matrix([best.box], [BOX])[0, 0] > 0.8
    assert best.evidence["template"] > 0.8
    assert all(set(c.evidence) == set(FEATURES) for c in fused)
    without = _fuse(scene, None)
    assert all("template" not in c.evidence and c.source != "template" for c in without)


def _calibration(features: list[str]) -> dict:
    n = len(features)
    return {
        "format": "siammatch-calibration",
        "version": 1,
        "features": features,
        "weights": [0.5] * n,
        "bias": -1.0,
        "mean": [0.3] * n,
        "scale": [0.2] * n,
        "meta": {"split": "val"},
    }


def test_a_calibration_without_template_still_loads_and_scores(tmp_path, scene):
    old = [f for f in FEATURES if f != "template"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_calibration(old)))
    cal = Calibration.load(path)
    assert cal.features == tuple(old)
    m = matcher.load(
        "siammask_small",
        overrides=["inference.match.template=true", f"inference.match.calibration={path}"],
    )
    cands = m.scored_candidates(Reference.from_image(PRODUCT), scene)
    assert cands and "template" in cands[0].evidence
    x = np.array([[c.evidence[f] for f in old] for c in cands])
    np.testing.assert_allclose([c.probability for c in cands], cal.probability(x))


def test_a_calibration_with_template_needs_the_template_stage(tmp_path):
    path = tmp_path / "new.json"
    path.write_text(json.dumps(_calibration(list(FEATURES))))
    with pytest.raises(ConfigError, match=r"inference\.match\.template: true"):
        matcher.load(
            "siammask_small",
            overrides=["inference.match.template=false", f"inference.match.calibration={path}"],
        )
    # without the geometric stage there is no fusion: template matching is off with it
    plain = matcher.load(
        "siammask_small",
        overrides=["inference.match.geometric=false", "inference.match.calibration="],
    )
    assert plain.recipe.inference.match.template and plain.ncc is None


@pytest.mark.parametrize("threads", ["1", "2"])
def test_started_proposals_equal_the_ones_asked_for(scene, monkeypatch, threads):
    """``start`` runs each reference's proposals on the match pool beside the search; the
    scene it gives answers with them, the same boxes as a fresh search, and a reference it
    was not started for (or another limit) is searched on demand."""
    monkeypatch.setenv("SIAMMATCH_MATCH_THREADS", threads)
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(PRODUCT))
    other = stage.encode_reference(Reference.from_image(product_image("coffee")))
    flat = stage.encode_reference(Reference.from_image(np.full((80, 80, 3), 120, np.uint8)))
    started = stage.start(scene, [ref, None, flat, ref], limit=3)
    assert list(started.jobs) == [(ref, 3)]  # one task per distinct textured reference
    prepared = started.result()
    assert set(prepared.early) == {(ref, 3)}
    fresh = stage.prepare_scene(scene)
    early = stage.proposals(ref, prepared, 3)
    assert early == stage.proposals(ref, fresh, 3) and len(early) == 3
    assert max(iou_matrix([b for b, _ in early], [BOX])[:, 0]) > 0.7
    assert stage.proposals(ref, prepared, 1) == early[:1]  # not started: searched now
    assert stage.proposals(other, prepared, 3) == stage.proposals(other, fresh, 3)
    assert stage.proposals(flat, prepared, 3) == []


def test_a_failed_started_proposal_is_raised_where_it_is_asked_for(scene, monkeypatch):
    monkeypatch.setenv("SIAMMATCH_MATCH_THREADS", "2")
    stage = NccVerifier()
    ref = stage.encode_reference(Reference.from_image(PRODUCT))

    def broken(*_args, **_kwargs):
        raise RuntimeError("pyramid broke")

    monkeypatch.setattr("matcher.inference.ncc.search_pyramid", broken)
    prepared = stage.start(scene, [ref], limit=1).result()
    with pytest.raises(RuntimeError, match="pyramid broke"):
        stage.proposals(ref, prepared, 1)
