"""Every number a user gives goes through matcher.checks: one message naming the key and
the allowed range, whichever configuration it belongs to."""

from __future__ import annotations

import math

import numpy as np
import pytest

import matcher
from api.settings import resolve_config
from matcher.checks import as_float, as_int, check_float, check_int, check_range
from matcher.embedder import EmbedderSpec
from matcher.errors import ConfigError, InvalidArgumentError


def test_as_int_takes_integers_only():
    assert as_int("k", 3) == 3
    assert as_int("k", np.int64(7)) == 7 and type(as_int("k", np.int64(7))) is int
    for bad in (True, 2.0, "3", None, [1]):
        with pytest.raises(ConfigError, match="k must be an integer"):
            as_int("k", bad)


def test_as_float_takes_finite_reals_only():
    assert as_float("x", 2) == 2.0 and type(as_float("x", 2)) is float
    assert as_float("x", np.float32(0.5)) == 0.5
    for bad in (False, "0.5", None):
        with pytest.raises(ConfigError, match="x must be a number"):
            as_float("x", bad)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError, match="x must be a finite number"):
            as_float("x", bad)


def test_check_range_names_the_key_and_the_interval():
    check_range("a.b", 1.0, 0.0, 1.0)
    check_range("a.b", 0.0, 0.0, 1.0)
    with pytest.raises(ConfigError, match=r"^a\.b must be in \(0\.0, 1\.0\], got 0\.0$"):
        check_range("a.b", 0.0, 0.0, 1.0, open_low=True)
    with pytest.raises(ConfigError, match=r"a\.b must be in \[0, 10\], got 11"):
        check_range("a.b", 11, 0, 10)
    with pytest.raises(ConfigError):
        check_range("a.b", math.nan, 0.0, 1.0)


def test_argument_checks_raise_the_callers_type():
    assert check_int("n", 4, 1, 5) == 4
    assert check_float("p", 1, 0.0, 1.0) == 1.0
    with pytest.raises(InvalidArgumentError, match=r"n must be in \[1, 5\], got 0"):
        check_int("n", 0, 1, 5)
    with pytest.raises(ConfigError, match="n must be an integer"):
        check_int("n", 1.5, 1, 5, error=ConfigError)


#: Out-of-range values outside the recipes (tests/matcher/test_config.py lists the
#: recipe's own): what is set, and the message's start.
EMBEDDER_SPECS = [
    ({"dim": 8}, r"embedder dim must be in \[16, 8192\], got 8"),
    ({"input_size": 0}, r"embedder input_size must be in \[16, 1024\]"),
    ({"hidden": -1}, r"embedder hidden must be in \[0, 65536\]"),
    ({"gem_p": 0.5}, r"embedder gem_p must be in \[1\.0, 100\.0\]"),
    ({"width_mult": 0}, r"embedder width_mult must be in \(0\.0, 4\.0\]"),
    ({"bn_eps": 0}, r"embedder bn_eps must be in \(0\.0, 1\.0\]"),
    ({"seed": -1}, r"embedder seed must be in \[0, "),
    ({"dim": "256"}, r"embedder dim must be an integer"),
]


@pytest.mark.parametrize("values, message", EMBEDDER_SPECS)
def test_embedder_spec_ranges(values, message):
    with pytest.raises(ConfigError, match=message):
        EmbedderSpec.from_dict(values)


SETTINGS = [
    ({"MAX_PIXELS": 0}, r"config MAX_PIXELS must be in \[1, "),
    ({"MAX_INSTANCES": 101}, r"config MAX_INSTANCES must be in \[1, 100\], got 101"),
    ({"MAX_K": 5000}, r"config MAX_K must be in \[1, 1000\]"),
    ({"SEARCH_CANDIDATES": 0}, r"config SEARCH_CANDIDATES must be in \[1, 1000\]"),
    ({"MAX_PAGE_SIZE": 10**6}, r"config MAX_PAGE_SIZE must be in \[1, 1000\]"),
    ({"MAX_ASPECT_RATIO": 0.5}, r"config MAX_ASPECT_RATIO must be in \[1\.0, "),
    ({"MAX_ASPECT_RATIO": math.nan}, r"config MAX_ASPECT_RATIO must be a finite number"),
    ({"DEFAULT_THRESHOLD": 1.5}, r"config DEFAULT_THRESHOLD must be in \[0\.0, 1\.0\]"),
    ({"MAX_CONTENT_LENGTH": True}, r"config MAX_CONTENT_LENGTH must be an integer"),
]


@pytest.mark.parametrize("values, message", SETTINGS)
def test_service_settings_ranges(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(values, environ={})


def test_settings_from_the_environment_are_range_checked_too():
    with pytest.raises(ConfigError, match=r"config MAX_K must be in \[1, 1000\], got 0"):
        resolve_config({}, environ={"SIAMMATCH_MAX_K": "0"})


BASELINES = [
    ("baseline_sift", "ratio=2", r"ratio must be in \[0\.05, 1\.0\], got 2\.0"),
    ("baseline_sift", "min_inliers=3", r"min_inliers must be in \[4, 10000\], got 3"),
    ("baseline_sift", "ratio=.nan", r"ratio.* must be a finite number"),
    ("baseline_template", "scale_step=1", r"scale_step must be in \[1\.01, 4\.0\], got 1\.0"),
    ("baseline_template", "min_object_fraction=0", r"min_object_fraction must be in \[0\.001, "),
    ("baseline_template", "peaks_per_level=2.5", r"peaks_per_level.* must be an integer"),
]


@pytest.mark.parametrize("name, override, message", BASELINES)
def test_baseline_parameter_ranges(name, override, message):
    with pytest.raises(ConfigError, match=message):
        matcher.load(name, overrides=[override])


#: Out-of-range values of the model and train sections (the same helper, at recipe load).
MODEL_AND_TRAIN = [
    ("model.stride=0", r"model\.stride must be in \[1, 256\], got 0"),
    ("model.exemplar_size=0", r"model\.exemplar_size must be in \[1, 4096\]"),
    ("model.context_amount=-1", r"model\.context_amount must be in \[0\.0, 10\.0\]"),
    ("model.instance_size=100", r"model\.instance_size \(100\) must be at least"),
    ("train.epochs=0", r"train\.epochs must be in \[1, "),
    ("train.batch_size=0", r"train\.batch_size must be in \[1, 65536\], got 0"),
    ("train.base_lr=0", r"train\.base_lr must be in \(0\.0, 100\.0\]"),
    ("train.momentum=1.5", r"train\.momentum must be in \[0\.0, 1\.0\]"),
    ("train.negative_ratio=2", r"train\.negative_ratio must be in \[0\.0, 1\.0\]"),
    ("train.workers=-1", r"train\.workers must be in \[0, 1024\]"),
    ("train.augment.flip=2", r"train\.augment\.flip must be in \[0\.0, 1\.0\], got 2\.0"),
    ("train.augment.search_shift=-1", r"train\.augment\.search_shift must be in \[0\.0, "),
    ("train.targets.pos_iou=1.5", r"train\.targets\.pos_iou must be in \[0\.0, 1\.0\]"),
    ("train.targets.total_num=0", r"train\.targets\.total_num must be in \[1, 100000\]"),
]


@pytest.mark.parametrize("override, message", MODEL_AND_TRAIN)
def test_model_and_train_ranges_are_checked_when_the_recipe_loads(override, message):
    from trainers.tasks import load_training_recipe

    with pytest.raises(ConfigError, match=message):
        load_training_recipe("siammask_small", [override])
