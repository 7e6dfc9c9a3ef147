"""Target assignment against hand-computed cases, caps, negative-pair rules and recipes:
the target geometry of recipes, capped sampling and the anchor (SiamRPN) targets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from matcher.errors import ConfigError
from matcher.model_config import score_offset
from matcher.recipes import list_recipes, load_recipe
from tests.trainers.target_helpers import PARAMS, RPN_GEO, gen, make_batch
from trainers.targets import build_targets, sample_capped, target_geometry

# -- geometry ------------------------------------------------------------------------------


def test_geometry_of_published_recipes():
    rpn = target_geometry(load_recipe("siamrpnpp_r50"))
    assert (rpn.search_size, rpn.score_size, rpn.offset, rpn.base_size) == (255, 25, 31.0, 8)
    np.testing.assert_array_equal(
        rpn.anchor_shapes, [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]
    )
    assert rpn.mask_size is None
    fcpp = target_geometry(load_recipe("siamfcpp_alexnet"))
    assert (fcpp.search_size, fcpp.score_size, fcpp.offset) == (303, 17, 87.0)
    assert fcpp.anchor_shapes is None and fcpp.num_anchors == 1
    assert target_geometry(load_recipe("siamfc_alexnet")).score_size == 17
    assert target_geometry(load_recipe("siammask_r50")).mask_size == 127
    assert target_geometry(load_recipe("siammask_r50_base")).mask_size == 63


@pytest.mark.parametrize("name", list_recipes())
def test_offset_equals_score_offset_at_instance_size(name):
    recipe = load_recipe(name)
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, search_size=None))
    geo = target_geometry(recipe)
    assert geo.search_size == recipe.model.instance_size
    assert geo.offset == score_offset(recipe.model)


def test_training_search_size_grows_the_map_not_the_offset():
    geo = target_geometry(load_recipe("siamrpnpp_r50", ["train.search_size=271"]))
    assert (geo.search_size, geo.score_size, geo.offset) == (271, 27, 31.0)


def test_geometry_validates_its_fields():
    with pytest.raises(ConfigError, match="positive"):
        dataclasses.replace(RPN_GEO, score_size=0)
    with pytest.raises(ConfigError, match="anchor_shapes"):
        dataclasses.replace(RPN_GEO, anchor_shapes=np.zeros((3,), np.float32))


def test_geometry_refuses_rpn_without_anchors():
    recipe = load_recipe("siamrpnpp_r50")
    recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, anchor=None))
    with pytest.raises(ConfigError, match="anchor"):
        target_geometry(recipe)


# -- sampling ------------------------------------------------------------------------------


def test_sample_capped_respects_caps_and_is_reproducible():
    cand = torch.rand((5, 40), generator=gen(1)) < 0.5
    caps = torch.tensor([0, 3, 100, 1, 7])
    kept = sample_capped(cand, caps, generator=gen(2))
    assert not (kept & ~cand).any()
    expected = torch.minimum(cand.sum(1), caps)
    torch.testing.assert_close(kept.sum(1), expected)
    assert torch.equal(kept, sample_capped(cand, caps, generator=gen(2)))
    draws = {tuple(sample_capped(cand, 3, generator=gen(s))[1].tolist()) for s in range(8)}
    assert len(draws) > 1


# -- SiamRPN -------------------------------------------------------------------------------


def test_rpn_labels_and_deltas_by_hand():
    # gt (20, 20, 40, 36): centre (30, 28), 20x16. IoUs worked out by hand:
    # 16x16 anchor: cell (1,1) 0.8, (1,2) 0.5, (1,0) 0.286, (0,1)/(2,1) 0.286, rest < 0.3;
    # 24x16 anchor: cell (1,1) 0.833, (1,2) 0.571, (1,0) 0.375, (0,1)/(2,1) 0.294, rest less.
    t = build_targets(
        "siamrpn",
        make_batch([20, 20, 40, 36], [1]),
        geometry=RPN_GEO,
        params=PARAMS,
        generator=gen(),
    )
    labels = t["cls_label"][0]
    assert labels.shape == (2, 4, 4) and labels.dtype == torch.int64
    expected = torch.zeros((2, 4, 4), dtype=torch.int64)
    expected[0, 1, 1] = expected[1, 1, 1] = 1
    expected[0, 1, 2] = expected[1, 1, 2] = expected[1, 1, 0] = -1
    assert torch.equal(labels, expected)

    weight = t["loc_weight"][0]
    assert torch.equal(weight, (expected == 1).float() / 2)
    deltas = t["loc_target"][0]
    assert deltas.shape == (4, 2, 4, 4)
    torch.testing.assert_close(deltas[:, 0, 1, 1], torch.tensor([2 / 16, 0, math.log(20 / 16), 0]))
    torch.testing.assert_close(deltas[:, 1, 1, 1], torch.tensor([2 / 24, 0, math.log(20 / 24), 0]))
    assert torch.count_nonzero(deltas[:, weight == 0]) == 0


def test_rpn_caps_positives_and_negatives():
    params = dataclasses.replace(PARAMS, pos_num=1, total_num=5)
    for seed in range(5):
        t = build_targets(
            "siamrpn",
            make_batch([20, 20, 40, 36], [1]),
            geometry=RPN_GEO,
            params=params,
            generator=gen(seed),
        )
        labels = t["cls_label"][0]
        assert (labels == 1).sum() == 1 and (labels[:, 1, 1] == 1).any()
        assert (labels == 0).sum() == 4  # total_num - positives kept
        assert t["loc_weight"].sum() == 1.0


def test_rpn_negative_pair_labels_only_near_the_object():
    # centre (36, 28) -> cell (row 1, col 2); radius 1 -> rows 0..2, cols 1..3, both anchors.
    params = dataclasses.replace(PARAMS, neg_radius=1, pos_num=100)
    t = build_targets("siamrpn", make_batch([26, 18, 46, 38], [0]), geometry=RPN_GEO, params=params)
    labels = t["cls_label"][0]
    expected = torch.full((2, 4, 4), -1, dtype=torch.int64)
    expected[:, 0:3, 1:4] = 0
    assert torch.equal(labels, expected)
    assert t["loc_weight"].sum() == 0 and t["loc_target"].abs().sum() == 0

    capped = build_targets(
        "siamrpn",
        make_batch([26, 18, 46, 38], [0]),
        geometry=RPN_GEO,
        params=dataclasses.replace(params, pos_num=5),
        generator=gen(3),
    )["cls_label"][0]
    assert (capped == 0).sum() == 5 and (capped == 1).sum() == 0
    assert (expected[capped == 0] == 0).all()


def test_rpn_negative_pair_at_the_border_and_outside():
    params = dataclasses.replace(PARAMS, neg_radius=1, pos_num=100)
    corner = build_targets(
        "siamrpn", make_batch([10, 12, 30, 28], [0]), geometry=RPN_GEO, params=params
    )["cls_label"][0]  # centre (20, 20) -> cell (0, 0)
    assert (corner == 0).sum() == 2 * 4 and (corner[:, :2, :2] == 0).all()
    outside = build_targets(
        "siamrpn", make_batch([200, 200, 220, 220], [0]), geometry=RPN_GEO, params=params
    )["cls_label"]
    assert (outside == -1).all()


def test_rpn_batch_equals_pairs_one_at_a_time():
    boxes = [[20, 20, 40, 36], [26, 18, 46, 38], [12, 30, 44, 50]]
    labels = [1, 0, 1]
    params = dataclasses.replace(PARAMS, pos_num=100, total_num=1000)
    together = build_targets("siamrpn", make_batch(boxes, labels), geometry=RPN_GEO, params=params)
    for i in range(3):
        alone = build_targets(
            "siamrpn", make_batch(boxes[i], [labels[i]]), geometry=RPN_GEO, params=params
        )
        for key, value in alone.items():
            torch.testing.assert_close(together[key][i : i + 1], value)


def _iou_loop(box, anchor):
    iw = max(0.0, min(box[2], anchor[2]) - max(box[0], anchor[0]))
    ih = max(0.0, min(box[3], anchor[3]) - max(box[1], anchor[1]))
    inter = iw * ih
    union = (
        (box[2] - box[0]) * (box[3] - box[1])
        + (anchor[2] - anchor[0]) * (anchor[3] - anchor[1])
        - inter
    )
    return inter / union


def test_rpn_labels_match_a_loop_on_the_siamrpnpp_geometry():
    geo = target_geometry(load_recipe("siamrpnpp_r50"))
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(4):
        cx, cy = rng.uniform(60, 195, 2)
        w, h = rng.uniform(30, 140, 2)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    params = dataclasses.replace(PARAMS, pos_num=10_000, total_num=100_000)
    t = build_targets("siamrpn", make_batch(boxes, [1] * 4, size=255), geometry=geo, params=params)
    for i, box in enumerate(boxes):
        for a, (w, h) in enumerate(geo.anchor_shapes.tolist()):
            for r in range(geo.score_size):
                for c in range(geo.score_size):
                    cx, cy = 31 + 8 * c, 31 + 8 * r
                    iou = _iou_loop(box, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                    want = 1 if iou > 0.6 else 0 if iou < 0.3 else -1
                    if abs(iou - 0.6) > 1e-5 and abs(iou - 0.3) > 1e-5:
                        assert t["cls_label"][i, a, r, c] == want, (i, a, r, c, iou)
    assert (t["cls_label"] == 1).any()


def test_rpn_targets_are_reproducible_given_a_generator():
    batch = make_batch([[20, 20, 40, 36], [26, 18, 46, 38]], [1, 0])
    params = dataclasses.replace(PARAMS, pos_num=1, total_num=4)
    a = build_targets("siamrpn", batch, geometry=RPN_GEO, params=params, generator=gen(5))
    b = build_targets("siamrpn", batch, geometry=RPN_GEO, params=params, generator=gen(5))
    for key in a:
        assert torch.equal(a[key], b[key])


def test_rpn_degenerate_box_gives_no_positives_and_no_nan():
    t = build_targets("siamrpn", make_batch([30, 30, 30, 40], [1]), geometry=RPN_GEO, params=PARAMS)
    assert (t["cls_label"] != 1).all()
    assert torch.isfinite(t["loc_target"]).all() and t["loc_weight"].sum() == 0
