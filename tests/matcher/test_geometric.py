"""The geometric verification stage, the calibrated fusion of evidence, and match mode with
both (``inference.match.geometric``), on scikit-image's photographs pasted into each other
with known homographies."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data

import matcher
from matcher.baselines.homography import RANSAC_METHODS
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError
from matcher.inference.evidence import iou_matrix
from matcher.inference.fusion import (
    FEATURES,
    Calibration,
    colour_histogram,
    colour_similarity,
    fit_calibration,
    resolve_calibration_path,
)
from matcher.inference.geometric import GeometricParams, GeometricVerifier, root_sift
from matcher.structures import Reference
from trainers.evaluate.calibration import expected_calibration_error

PRODUCT = skimage.data.astronaut()[20:300, 120:380]  # a textured, planar-enough "pack face"
OTHER = skimage.data.rocket()[40:300, 100:400]


def _scene() -> np.ndarray:
    return cv2.resize(skimage.data.coffee(), (640, 480), interpolation=cv2.INTER_AREA)


def _paste(scene: np.ndarray, product: np.ndarray, corners) -> tuple[np.ndarray, np.ndarray]:
    """``scene`` with ``product`` warped onto ``corners`` (TL, TR, BR, BL); the corners."""
    h, w = product.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32(corners)
    homography = cv2.getPerspectiveTransform(src, dst)
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(product, homography, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones((h, w), np.uint8), homography, size) > 0
    out = scene.copy()
    out[inside] = warped[inside]
    return out, dst


def _box(corners) -> tuple[float, float, float, float]:
    c = np.asarray(corners, np.float64)
    return (c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max())


TILTED = [[300, 90], [480, 120], [470, 320], [310, 290]]
SECOND = [[40, 260], [170, 250], [180, 420], [50, 430]]


def test_root_sift_rows_are_non_negative_unit_vectors():
    d = np.random.default_rng(0).uniform(0, 50, (7, 128)).astype(np.float32)
    r = root_sift(d)
    assert np.all(r >= 0)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("method", sorted(RANSAC_METHODS))
def test_proposals_recover_every_instance_and_its_outline(method):
    scene, first = _paste(_scene(), PRODUCT, TILTED)
    scene, second = _paste(scene, PRODUCT, SECOND)
    geo = GeometricVerifier(GeometricParams(ransac_method=method))
    ref = geo.encode_reference(Reference.from_image(PRODUCT))
    prepared = geo.prepare_scene(scene)
    matches = geo.correspondences(ref, prepared)
    found = geo.proposals(ref, prepared, matches, 3)
    assert len(found) == 2
    for truth in (first, second):
        best = min(found, key=lambda e: np.abs(e.quad - truth).max())
        assert np.abs(best.quad - truth).max() < 4.0  # outline within a few pixels
        assert best.inliers >= 20 and 0.3 < best.spread <= 1.0


def test_evidence_is_strong_on_the_product_and_absent_elsewhere():
    scene, truth = _paste(_scene(), PRODUCT, TILTED)
    geo = GeometricVerifier()
    ref = geo.encode_reference(Reference.from_image(PRODUCT))
    prepared = geo.prepare_scene(scene)
    matches = geo.correspondences(ref, prepared)
    loose = (330.0, 130.0, 450.0, 280.0)  # the Siamese kind of box: inside, too small
    on = geo.evidence(ref, prepared, matches, loose)
    assert on.inliers >= 20 and on.inlier_ratio > 0.5
    assert iou_matrix([on.box], [_box(truth)])[0, 0] > 0.95  # refined to the outline
    off = geo.evidence(ref, prepared, matches, (20.0, 20.0, 200.0, 200.0))
    assert off.inliers == 0 and off.quad is None


def test_an_unknown_estimator_is_refused():
    with pytest.raises(ConfigError, match="ransac_method"):
        GeometricParams(ransac_method="lmeds")
    with pytest.raises(ConfigError, match="ransac_method"):
        matcher.load("baseline_sift", overrides=["ransac_method=prosac"])
    sift = matcher.load("baseline_sift", overrides=["ransac_method=usac_accurate"])
    assert sift.params.ransac_method == "usac_accurate"


def test_no_proposal_in_a_scene_without_the_product():
    scene, _ = _paste(_scene(), OTHER, TILTED)
    geo = GeometricVerifier()
    ref = geo.encode_reference(Reference.from_image(PRODUCT))
    prepared = geo.prepare_scene(scene)
    assert geo.proposals(ref, prepared, geo.correspondences(ref, prepared), 3) == []


def test_colour_similarity_separates_a_recoloured_copy():
    hist = colour_histogram(PRODUCT)
    assert colour_similarity(hist, hist) == pytest.approx(1.0)
    hsv = cv2.cvtColor(PRODUCT, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 90) % 180
    recoloured = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    assert colour_similarity(hist, colour_histogram(recoloured)) < 0.6
    grey = np.full((20, 20, 3), 128, np.uint8)
    assert colour_similarity(colour_histogram(grey), colour_histogram(grey)) == pytest.approx(1.0)


def test_fit_calibration_recovers_a_known_logistic_model(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, len(FEATURES)))
    true_w = np.array([1.5, -2.0, 0.0, 0.5, 0.0, 1.0, 0.8])
    p = 1 / (1 + np.exp(-(x @ true_w - 0.3)))
    y = (rng.uniform(size=len(p)) < p).astype(float)
    cal = fit_calibration(x, y, l2=1e-4)
    fitted = cal.probability(x)
    assert np.abs(fitted - p).mean() < 0.03
    assert expected_calibration_error(fitted, y) < 0.03
    path = tmp_path / "cal.json"
    cal.save(path)
    again = Calibration.load(path)
    np.testing.assert_allclose(again.probability(x[:50]), fitted[:50])
    with pytest.raises(ValueError, match="two positive"):
        fit_calibration(x[:10], np.zeros(10))


_CAL = {"format": "siammatch-calibration", "features": ["siamese"], "bias": 0}
_CAL.update(mean=[0], scale=[1])


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "cannot read"),
        (json.dumps({"format": "other"}), "not a siammatch-calibration"),
        (json.dumps({**_CAL, "weights": [1, 2]}), "do not match"),
    ],
)
def test_a_wrong_calibration_file_is_refused(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(CheckpointError, match=message):
        Calibration.load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_calibration_path(str(tmp_path / "missing.json"))


def test_recipe_refuses_a_calibration_without_the_geometric_stage():
    with pytest.raises(ConfigError, match="geometric"):
        matcher.load("siammask_small", overrides=["inference.match.geometric=false"])


@pytest.fixture(scope="module")
def geometric_default():
    return matcher.load(
        "siammask_small",
        overrides=["inference.match.geometric=true", "inference.match.calibration="],
    )


def test_match_mode_with_the_geometric_stage_pins_the_product(geometric_default):
    scene, truth = _paste(_scene(), PRODUCT, TILTED)
    ref = Reference.from_image(PRODUCT)
    result = geometric_default.match(ref, scene, score_threshold=0.0)
    assert iou_matrix([result.best.box], [_box(truth)])[0, 0] > 0.9
    assert result.best.mask is not None  # SiamMask's mask inside the refined box
    cands = geometric_default.scored_candidates(ref, scene)
    assert cands[0].quad is not None and cands[0].evidence["log_inliers"] > np.log(20)
    absent_scene, _ = _paste(_scene(), OTHER, TILTED)
    absent = geometric_default.scored_candidates(ref, absent_scene)
    assert all(c.quad is None for c in absent)
    assert max(c.probability for c in absent) < cands[0].probability


def test_geometric_features_are_required_of_encoded_references(geometric_default):
    plain = matcher.load(
        "siammask_small",
        overrides=["inference.match.geometric=false", "inference.match.calibration="],
    )
    feats = plain.encode_reference(Reference.from_image(PRODUCT))
    feats = type(feats)(**{**feats.__dict__, "recipe": geometric_default.name})
    with pytest.raises(InvalidArgumentError, match="geometric"):
        geometric_default.match(feats, _scene())
    with pytest.raises(InvalidArgumentError, match="no geometric stage"):
        plain.scored_candidates(Reference.from_image(PRODUCT), _scene())


def test_the_shipped_default_is_geometric_and_calibrated_on_the_validation_split():
    default = matcher.load("siammask_small")
    assert default.geometric is not None and default.calibration is not None
    meta = default.calibration.meta
    assert meta["split"] == "val" and meta["positives"] >= 20
    assert default.recipe.inference.match.score_threshold == 0.5
    assert default.calibration.features == FEATURES
