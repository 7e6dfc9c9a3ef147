"""The channel-split normalised cross-correlation (:mod:`matcher.baselines.correlation`)
against OpenCV's own three-channel ``TM_CCOEFF_NORMED`` and a brute-force Pearson
correlation, on photographs large enough to take the split path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from matcher.baselines import correlation
from matcher.baselines.correlation import SPLIT_FROM, correlate, prepare
from matcher.baselines.template import ScenePyramid, as_channels


def _photo(name: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A sample photo resized to ``size`` (w, h) with INTER_AREA (fractional values, as the
    pyramid's levels have), in the correlation's colour channels, and its grey levels."""
    rgb = cv2.resize(getattr(skimage.data, name)(), size, interpolation=cv2.INTER_AREA)
    return as_channels(rgb, colour=True)


def _opencv(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    return cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)


def _flat_windows(grey: np.ndarray, shape: tuple[int, int], min_std: float) -> np.ndarray:
    th, tw = shape
    rows, cols = grey.shape[0] - th + 1, grey.shape[1] - tw + 1
    g = grey.astype(np.float64)
    var = np.zeros((rows, cols))
    for y in range(0, rows, 7):  # a sample of windows is enough for the mask test
        for x in range(0, cols, 7):
            var[y, x] = g[y : y + th, x : x + tw].var()
    return var


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("size", [(320, 240), (640, 480)])
def test_the_split_path_equals_opencvs_colour_correlation(name, size):
    image, grey = _photo(name, size)
    assert image.shape[0] * image.shape[1] >= SPLIT_FROM
    h, w = grey.shape
    prepared = prepare(image, grey)
    for y, x, th, tw in [(h // 3, w // 4, 32, 24), (5, 9, 20, 32), (h - 40, w - 40, 31, 31)]:
        template = np.ascontiguousarray(image[y : y + th, x : x + tw]) * 0.8 + 11.0
        ours = correlate(image, grey, template, min_std=0.0, prepared=prepared)
        theirs = np.nan_to_num(_opencv(image, template))
        assert ours.shape == theirs.shape == (h - th + 1, w - tw + 1)
        assert np.abs(ours - theirs).max() < 5e-4
        assert np.abs(ours - theirs).mean() < 1e-5
        assert np.unravel_index(ours.argmax(), ours.shape) == (y, x)  # the template's origin
        again = correlate(image, grey, template, min_std=0.0)  # prepared here
        assert np.array_equal(again, ours)


def test_the_split_path_matches_a_brute_force_pearson_correlation():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (200, 240, 3)).astype(np.float32)
    grey = image.mean(axis=2)
    pattern = rng.uniform(0, 255, (13, 17, 3)).astype(np.float32)
    response = correlate(image, grey, pattern, min_std=3.0)
    for y, x in [(0, 0), (57, 101), (187, 223)]:
        a = image[y : y + 13, x : x + 17].astype(np.float64)
        a -= a.mean(axis=(0, 1))
        b = pattern.astype(np.float64) - pattern.mean(axis=(0, 1))
        expected = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
        assert response[y, x] == pytest.approx(expected, abs=1e-5)


def test_flat_windows_score_zero_and_a_flat_template_one_as_in_opencv():
    image, grey = _photo("astronaut", (320, 240))
    image, grey = image.copy(), grey.copy()
    image[:100, :100] = 90.0  # a flat corner
    grey[:100, :100] = 90.0
    template = np.ascontiguousarray(image[150:180, 200:230])
    response = correlate(image, grey, template, min_std=3.0)
    assert np.all(response[:70, :70] == 0.0)  # windows inside the flat corner
    assert np.all(np.isfinite(response)) and np.abs(response).max() <= 1.0
    var = _flat_windows(grey, template.shape[:2], 3.0)
    sampled = np.zeros_like(var, bool)
    sampled[::7, ::7] = True
    assert np.all(response[sampled & (var < 9.0)] == 0.0)
    flat = np.full((12, 12, 3), 40.0, np.float32)
    ours = correlate(image, grey, flat, min_std=0.0)
    assert np.all(ours[100:, 100:] == 1.0)
    assert np.all(ours[100:, 100:] == np.nan_to_num(_opencv(image, flat))[100:, 100:])


def test_grey_images_and_small_images_use_opencv_directly():
    _, grey = _photo("coffee", (320, 240))
    template = np.ascontiguousarray(grey[60:90, 100:124, None])
    ours = correlate(grey[:, :, None], grey, template, min_std=0.0)
    assert np.array_equal(ours, np.nan_to_num(_opencv(grey, template[:, :, 0])))
    small, small_grey = _photo("coffee", (70, 60))
    assert small.shape[0] * small.shape[1] < SPLIT_FROM
    template = np.ascontiguousarray(small[10:30, 20:44])
    ours = correlate(small, small_grey, template, min_std=0.0)
    assert np.array_equal(ours, np.nan_to_num(_opencv(small, template)))


def test_a_template_larger_than_the_image_is_refused_as_before():
    image, grey = _photo("coffee", (320, 240))
    with pytest.raises(cv2.error):
        correlate(image, grey, np.zeros((300, 20, 3), np.float32), min_std=0.0)


def test_pyramid_levels_prepare_once(monkeypatch):
    rgb = cv2.resize(skimage.data.chelsea(), (320, 240), interpolation=cv2.INTER_AREA)
    pyramid = ScenePyramid.from_image(rgb, colour=True)
    calls = []
    original = correlation.prepare

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr("matcher.baselines.template.prepare", counting)
    first = pyramid.prepared(1.2)
    assert pyramid.prepared(1.2) is first and len(calls) == 1
    assert first.image.shape == (288, 384, 3) and len(first.planes) == 3
    assert np.array_equal(first.planes[1], first.image[:, :, 1])
    expected = sum(first.image[:, :, c].astype(np.float64) ** 2 for c in range(3))
    assert np.allclose(first.energy, expected, rtol=1e-6)
