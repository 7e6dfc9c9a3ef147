"""Registries refuse duplicates and explain misses."""

from __future__ import annotations

import pytest

from matcher.errors import UnknownComponentError
from matcher.models.backbones import BACKBONES
from matcher.models.heads import HEADS
from matcher.registry import Registry


def test_duplicate_registration_raises():
    reg = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownComponentError) as err:
        BACKBONES.get("resnet51")
    assert "resnet50_atrous" in str(err.value) and "backbone" in str(err.value)


def test_expected_components_are_registered():
    assert {
        "alexnet_legacy",
        "alexnet_v1",
        "resnet50_atrous",
        "mobilenetv2",
        "pixel_patches",
    } <= set(BACKBONES)
    assert {"siamfc", "depthwise_rpn", "multi_rpn", "upchannel_rpn"} <= set(HEADS)
