"""Recipes load into frozen typed dataclasses; bad keys and values are named."""

from __future__ import annotations

import dataclasses
import re

import pytest

import matcher
from matcher.errors import ConfigError, UnknownComponentError
from matcher.model_config import score_size
from matcher.recipes import apply_override, load_recipe, recipe_from_dict


@pytest.mark.parametrize("name", matcher.list_recipes())
def test_every_recipe_loads_and_is_frozen(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    assert recipe.family in matcher.FAMILIES
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.model.exemplar_size = 1  # type: ignore[misc]
    # The resolved recipe survives a round trip through plain data (checkpoints).
    assert recipe_from_dict(recipe.to_dict()) == recipe


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "family: siamfc\nmodel:\n  backbone: {name: alexnet_v1}\n  head: {name: siamfc}\n"
        "  exemplr_size: 127\ninference:\n  track: {tracker: siamfc}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert "model.exemplr_size" in str(err.value)
    assert "exemplar_size" in str(err.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.instance_size=big", "model.instance_size"),
        ("model.anchor.ratios=0.5", "model.anchor.ratios"),
        ("inference.match.score_threshold=[1]", "inference.match.score_threshold"),
        ("model.input_format=yuv", "model.input_format"),
        ("inference.track.adaptive=3", "inference.track.adaptive"),
    ],
)
def test_mistyped_override_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_recipe("siamrpnpp_alexnet", [override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("scale_step=1", "scale_step must be in (1.0, 10.0], got 1.0"),
        ("scale_step=0.8", "scale_step must be in (1.0, 10.0]"),
        ("min_object_fraction=0", "min_object_fraction must be in (0.0, 1.0], got 0.0"),
        ("min_object_fraction=0.9", "min_object_fraction must be in (0.0, 0.5]"),
        ("max_upscale=0", "max_upscale must be in (0.0, 64.0]"),
        ("score_threshold=1.5", "score_threshold must be in [0.0, 1.0]"),
        ("max_instances=0", "max_instances must be in [1, 100]"),
        ("nms_iou=0", "nms_iou must be in (0.0, 1.0]"),
        ("pre_nms_top_k=0", "pre_nms_top_k must be in [1, 100000]"),
        ("penalty_k=-1", "penalty_k must be in [0.0, 100.0]"),
        ("box_voting_iou=2", "box_voting_iou must be in [0.0, 1.0]"),
        ("distractor_candidates=0", "distractor_candidates must be in [1, 1000]"),
    ],
)
def test_match_settings_out_of_range_are_named(override, message):
    """Values that used to divide by zero or take the log of 0 in the pyramid."""
    extra = ["inference.match.max_object_fraction=0.5"] if "0.9" in override else []
    with pytest.raises(ConfigError, match=re.escape(f"inference.match.{message}")):
        load_recipe("siamrpnpp_alexnet", [*extra, f"inference.match.{override}"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("window_influence=1.5", "window_influence must be in [0.0, 1.0], got 1.5"),
        ("lr=-0.1", "lr must be in [0.0, 1.0]"),
        ("penalty_k=-1", "penalty_k must be in [0.0, 100.0]"),
        ("scale_num=0", "scale_num must be in [1, 15]"),
        ("scale_step=0", "scale_step must be in (0.0, 10.0]"),
        ("response_up=0", "response_up must be in [1, 64]"),
        ("instance_size=0", "instance_size must be in [1, 4096]"),
        ("mask_threshold=2", "mask_threshold must be in [0.0, 1.0]"),
    ],
)
def test_track_settings_out_of_range_are_named(override, message):
    with pytest.raises(ConfigError, match=re.escape(f"inference.track.{message}")):
        load_recipe("siamfc_alexnet", [f"inference.track.{override}"])


def test_the_recipe_cap_on_instances_is_what_match_accepts():
    from matcher.inference_config import MAX_INSTANCES
    from matcher.interface import MAX_INSTANCES_LIMIT

    assert MAX_INSTANCES == MAX_INSTANCES_LIMIT


def test_override_outside_the_schema_is_refused():
    with pytest.raises(ConfigError, match=re.escape("inference.match.scal_step")):
        load_recipe("siamrpnpp_alexnet", ["inference.match.scal_step=1.3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe("siamrpnpp_alexnet", ["inference.match.scale_step"])


def test_overrides_apply_and_convert_ints_to_floats():
    recipe = load_recipe(
        "siamrpnpp_r50",
        [
            "inference.match.score_threshold=1",
            "inference.track.lr=0.25",
            "model.head.weighted=false",
        ],
    )
    assert recipe.inference.match.score_threshold == 1.0
    assert isinstance(recipe.inference.match.score_threshold, float)
    assert recipe.inference.track.lr == 0.25 and recipe.model.head.weighted is False


def test_base_recipes_inherit_and_override():
    base, otb = load_recipe("siamrpnpp_r50"), load_recipe("siamrpnpp_r50_otb")
    assert otb.model.head.weighted is False and base.model.head.weighted is True
    assert otb.inference.track.penalty_k == 0.24
    assert otb.model.backbone == base.model.backbone
    assert otb.description != base.description


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(UnknownComponentError) as err:
        load_recipe("siamrpnpp_r51")
    assert "siamrpnpp_r50" in str(err.value)


def test_missing_required_key_is_named(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("family: siamfc\nmodel:\n  backbone: {name: alexnet_v1}\n")
    with pytest.raises(ConfigError, match="head"):
        load_recipe(path)


def test_apply_override_creates_intermediate_sections():
    raw: dict = {}
    apply_override(raw, "model.anchor.scales=[4, 8]")
    assert raw == {"model": {"anchor": {"scales": [4, 8]}}}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("siamrpnpp_r50", 25),
        ("siamrpnpp_mobilenetv2", 25),
        ("siamrpnpp_alexnet", 21),
        ("siamrpn_alexnet_upchannel", 19),
        ("siamfc_alexnet", 17),
    ],
)
def test_score_sizes_of_the_original_configs(name, expected):
    recipe = load_recipe(name)
    assert score_size(recipe.model, recipe.model.instance_size) == expected
