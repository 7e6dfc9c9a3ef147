"""Every matcher :func:`matcher.load` gives implements :class:`matcher.Matcher`: the same
methods, its defaults as properties, ``match`` as ``match_many`` of one, and
:class:`~matcher.errors.NoTrackingModeError` where there is no tracking mode."""

from __future__ import annotations

import numpy as np
import pytest

import matcher
from matcher.errors import ConfigError, NoTrackingModeError
from tests.helpers import clutter_scene, paste, product_image

PRODUCT = product_image("coffee")
BOX = (150, 80, 230, 160)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return paste(clutter_scene(240, 320, seed=5), PRODUCT, BOX)


# one recipe of each kind: Siamese (shipped weights), detector (untrained network, only
# the interface is exercised), the two baselines
@pytest.mark.parametrize(
    ("name", "kind", "tracks"),
    [
        ("siammask_small", "siamese", True),
        ("tiny/siam_mask_rcnn", "detector", False),
        ("baseline_sift", "baseline", False),
        ("baseline_template", "baseline", False),
    ],
)
def test_every_kind_of_matcher_has_the_one_interface(scene, name, kind, tracks):
    m = matcher.load(name)
    assert isinstance(m, matcher.Matcher)
    info = m.describe()
    assert info["kind"] == kind and info["tracking"] is tracks
    assert info["name"] == m.name and 0.0 <= info["score_threshold"] <= 1.0
    assert info["max_instances"] >= 1 and info["device"] == "cpu"
    reference = matcher.Reference.from_image(PRODUCT)
    features = m.encode_reference(reference)
    one = m.match(features, scene, score_threshold=0.0, max_instances=3)
    many = m.match_many([features, reference], scene, score_threshold=0.0, max_instances=3)
    assert len(many) == 2 and m.match_many([], scene) == []
    for result in (one, *many):
        assert len(result.instances) <= 3 and result.scene_size == (240, 320)
    np.testing.assert_allclose(
        [i.box for i in one.instances], [i.box for i in many[0].instances], atol=1e-4
    )
    if tracks:
        assert m.tracker() is not None
    else:
        with pytest.raises(NoTrackingModeError):
            m.tracker()


def test_the_user_facing_loader_refuses_an_untrained_network():
    with pytest.raises(ConfigError, match="needs trained weights: pass --weights"):
        matcher.load_trained("siamfc_alexnet", hint="pass --weights FILE")
    assert matcher.load_trained("baseline_sift").name == "baseline_sift"
