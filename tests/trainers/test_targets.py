"""Target assignment against hand-computed cases, caps, negative-pair rules and recipes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matcher.config import score_offset
from matcher.errors import ConfigError, InvalidArgumentError, UnknownComponentError
from matcher.recipes import list_recipes, load_recipe
from matcher.train_config import TargetConfig
from trainers.targets import (
    TARGETS,
    TargetGeometry,
    build_targets,
    crop_mask_windows,
    sample_capped,
    target_geometry,
)

# A 4x4 score map, cells centred on 20, 28, 36, 44, with a 16x16 and a 24x16 anchor.
RPN_GEO = TargetGeometry(
    search_size=65,
    exemplar_size=32,
    stride=8,
    score_size=4,
    offset=20.0,
    anchor_shapes=np.array([[16, 16], [24, 16]], np.float32),
)
# A 9x9 map (stride 4, cells at 3.5 + 4j) on a 40-pixel crop with 16-pixel mask windows.
MASK_GEO = TargetGeometry(
    search_size=40,
    exemplar_size=16,
    stride=4,
    score_size=9,
    offset=3.5,
    anchor_shapes=np.array([[16, 16]], np.float32),
    base_size=2,
    mask_size=16,
)
PARAMS = TargetConfig()


def make_batch(boxes, labels, *, size=65, masks=None, has_mask=None) -> dict[str, torch.Tensor]:
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    num = len(boxes)
    if masks is None:
        masks = torch.zeros((num, size, size), dtype=torch.uint8)
    if has_mask is None:
        has_mask = [False] * num
    return {
        "search_box": boxes,
        "label": torch.tensor(labels, dtype=torch.int64),
        "search_mask": masks,
        "has_mask": torch.tensor(has_mask, dtype=torch.bool),
    }


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


# -- SiamFC --------------------------------------------------------------------------------

FC_GEO = TargetGeometry(search_size=65, exemplar_size=33, stride=8, score_size=5, offset=16.0)


def _positives(labels):
    return {tuple(p) for p in torch.nonzero(labels[0, 0]).tolist()}


def test_siamfc_labels_by_hand():
    # box centre (40, 32) -> cell (row 2, col 3) of centres 16, 24, 32, 40, 48.
    batch = make_batch([30, 22, 50, 42], [1])
    one = build_targets(
        "siamfc", batch, geometry=FC_GEO, params=dataclasses.replace(PARAMS, r_pos=8.0)
    )["cls_label"]
    assert one.shape == (1, 1, 5, 5) and one.dtype == torch.int64
    assert _positives(one) == {(2, 3), (1, 3), (3, 3), (2, 2), (2, 4)}
    two = build_targets("siamfc", batch, geometry=FC_GEO, params=PARAMS)["cls_label"]
    diamond = {(r, c) for r in range(5) for c in range(5) if abs(r - 2) + abs(c - 3) <= 2}
    assert _positives(two) == diamond and len(diamond) == 12
    half = build_targets(
        "siamfc",
        make_batch([26, 22, 46, 42], [1]),
        geometry=FC_GEO,
        params=dataclasses.replace(PARAMS, r_pos=8.0),
    )["cls_label"]  # centre (36, 32): 2.5 cells across
    assert _positives(half) == {(2, 2), (2, 3)}


def test_siamfc_negative_pair_is_all_negative_and_recipe_centre():
    labels = build_targets(
        "siamfc", make_batch([30, 22, 50, 42], [0]), geometry=FC_GEO, params=PARAMS
    )["cls_label"]
    assert (labels == 0).all()
    geo = target_geometry(load_recipe("siamfc_alexnet"))
    centred = build_targets(
        "siamfc", make_batch([95, 95, 159, 159], [1], size=255), geometry=geo, params=PARAMS
    )["cls_label"]
    assert _positives(centred) == {
        (r, c) for r in range(17) for c in range(17) if abs(r - 8) + abs(c - 8) <= 2
    }


# -- SiamFC++ ------------------------------------------------------------------------------


def test_siamfcpp_targets_by_hand():
    # cells at 20, 28, 36, 44; gt (20, 18, 45, 40). Column 0 has l = 0 (not strictly
    # inside), row 3 has b = -4.
    t = build_targets(
        "siamfcpp", make_batch([20, 18, 45, 40], [1]), geometry=RPN_GEO, params=PARAMS
    )
    labels = t["cls_label"][0, 0]
    expected = torch.zeros((4, 4), dtype=torch.int64)
    expected[0:3, 1:4] = 1
    assert torch.equal(labels, expected)
    torch.testing.assert_close(t["ltrb_target"][0, :, 2, 2], torch.tensor([16.0, 18, 9, 4]))
    torch.testing.assert_close(t["ltrb_target"][0, :, 0, 0], torch.tensor([0.0, 2, 25, 20]))
    ctr = t["ctr_target"][0, 0]
    torch.testing.assert_close(ctr[1, 1], torch.tensor(math.sqrt(8 / 17 * 10 / 12)))
    torch.testing.assert_close(ctr[0, 3], torch.tensor(math.sqrt(1 / 24 * 2 / 20)))
    assert (ctr[expected == 0] == 0).all() and (ctr[expected == 1] > 0).all()
    torch.testing.assert_close(t["box_target"], torch.tensor([[20.0, 18, 45, 40]]))


def test_siamfcpp_negative_pair_remaps_labels_and_keeps_centreness():
    pos = build_targets(
        "siamfcpp", make_batch([20, 18, 45, 40], [1]), geometry=RPN_GEO, params=PARAMS
    )
    neg = build_targets(
        "siamfcpp", make_batch([20, 18, 45, 40], [0]), geometry=RPN_GEO, params=PARAMS
    )
    inside = pos["cls_label"] == 1
    assert (neg["cls_label"][inside] == 0).all() and (neg["cls_label"][~inside] == -1).all()
    torch.testing.assert_close(neg["ctr_target"], pos["ctr_target"])


# -- SiamMask ------------------------------------------------------------------------------


def _crop(mask: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    pad = side
    padded = np.pad(mask, pad)
    return padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side].astype(np.float32)


def test_mask_windows_are_exact_crops_of_the_gt_mask():
    masks = (torch.rand((2, 40, 40), generator=gen(4)) > 0.5).to(torch.uint8)
    positions = torch.tensor([[0, 0, 0], [1, 8, 8], [0, 4, 2], [1, 3, 6]])
    out = crop_mask_windows(masks, positions, geometry=MASK_GEO)
    assert out.shape == (4, 16, 16) and out.dtype == torch.float32
    for (b, r, c), got in zip(positions.tolist(), out, strict=True):
        want = _crop(masks[b].numpy(), (c - 1) * 4, (r - 1) * 4, 16)
        np.testing.assert_array_equal(got.numpy(), want)


def test_mask_windows_resample_to_the_logit_size():
    masks = (torch.rand((1, 40, 40), generator=gen(6)) > 0.5).to(torch.uint8)
    positions = torch.tensor([[0, 0, 0], [0, 5, 3]])
    half = crop_mask_windows(masks, positions, geometry=dataclasses.replace(MASK_GEO, mask_size=8))
    exact = crop_mask_windows(masks, positions, geometry=MASK_GEO)
    torch.testing.assert_close(half, F.avg_pool2d(exact[:, None], 2)[:, 0])
    ones = torch.ones((1, 40, 40), dtype=torch.uint8)
    odd = crop_mask_windows(
        ones,
        torch.tensor([[0, 4, 4], [0, 0, 0]]),
        geometry=dataclasses.replace(MASK_GEO, mask_size=7),
    )
    torch.testing.assert_close(odd[0], torch.ones((7, 7)))  # window (12..28) inside
    assert odd[1].min() == 0 and odd[1].max() == 1 and odd.shape == (2, 7, 7)
    empty = crop_mask_windows(ones, torch.zeros((0, 3), dtype=torch.int64), geometry=MASK_GEO)
    assert empty.shape == (0, 16, 16)


def test_siammask_positions_only_for_positive_pairs_with_masks():
    # The anchor of cell (4, 4) is (11.5, 11.5, 27.5, 27.5); its neighbours overlap 0.6.
    masks = (torch.rand((3, 40, 40), generator=gen(7)) > 0.5).to(torch.uint8)
    box = [11.5, 11.5, 27.5, 27.5]
    batch = make_batch(
        [box, box, box], [1, 1, 0], size=40, masks=masks, has_mask=[True, False, True]
    )
    params = dataclasses.replace(PARAMS, pos_iou=0.65)
    t = build_targets("siammask", batch, geometry=MASK_GEO, params=params, generator=gen())
    assert torch.equal(t["mask_positions"], torch.tensor([[0, 4, 4]]))
    assert t["mask_positions"].dtype == torch.int64
    np.testing.assert_array_equal(t["mask_targets"][0].numpy(), _crop(masks[0].numpy(), 12, 12, 16))
    assert (t["cls_label"][1] == 1).sum() == 1  # no mask, still a positive anchor


def test_siammask_caps_mask_cells_at_pos_num():
    masks = torch.ones((1, 40, 40), dtype=torch.uint8)
    params = dataclasses.replace(PARAMS, pos_iou=0.1, pos_num=3)
    t = build_targets(
        "siammask",
        make_batch([0, 0, 40, 40], [1], size=40, masks=masks, has_mask=[True]),
        geometry=MASK_GEO,
        params=params,
        generator=gen(),
    )
    assert len(t["mask_positions"]) == 3 and t["mask_targets"].shape == (3, 16, 16)


# -- every family --------------------------------------------------------------------------


def random_batch(num: int = 4, size: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    g = gen(seed)
    centre = torch.rand((num, 2), generator=g) * 20 + 10
    half = torch.rand((num, 2), generator=g) * 8 + 4
    return make_batch(
        torch.cat([centre - half, centre + half], 1).tolist(),
        [1, 0] * (num // 2),
        size=size,
        masks=(torch.rand((num, size, size), generator=g) > 0.5).to(torch.uint8),
        has_mask=[True] * num,
    )


@pytest.mark.parametrize("family", TARGETS.names())
def test_every_family_builds_finite_targets_and_leaves_the_batch_alone(family):
    batch = random_batch()
    before = {k: v.clone() for k, v in batch.items()}
    t = build_targets(family, batch, geometry=MASK_GEO, params=PARAMS, generator=gen())
    assert t["cls_label"].shape[0] == 4 and t["cls_label"].shape[-2:] == (9, 9)
    for value in t.values():
        assert value.device == batch["search_box"].device
        if value.is_floating_point():
            assert torch.isfinite(value).all()
    for key, value in batch.items():
        assert torch.equal(value, before[key])


def test_build_targets_errors():
    with pytest.raises(UnknownComponentError, match="siamrpn"):
        build_targets("siamfoo", random_batch(), geometry=MASK_GEO, params=PARAMS)
    batch = random_batch()
    del batch["label"]
    with pytest.raises(InvalidArgumentError, match="label"):
        build_targets("siamrpn", batch, geometry=MASK_GEO, params=PARAMS)
    with pytest.raises(InvalidArgumentError, match="search_mask"):
        build_targets("siammask", random_batch(size=41), geometry=MASK_GEO, params=PARAMS)
    with pytest.raises(ConfigError, match="anchor"):
        build_targets("siamrpn", random_batch(), geometry=FC_GEO, params=PARAMS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("family", TARGETS.names())
def test_targets_on_the_gpu_equal_the_cpu_ones(family):
    batch = random_batch()
    params = dataclasses.replace(PARAMS, pos_iou=0.3, neg_iou=0.2, pos_num=2, total_num=6)
    cpu = build_targets(family, batch, geometry=MASK_GEO, params=params, generator=gen(1))
    on_gpu = {k: v.cuda() for k, v in batch.items()}
    gpu = build_targets(family, on_gpu, geometry=MASK_GEO, params=params, generator=gen(1))
    for key, value in cpu.items():
        assert gpu[key].device.type == "cuda"
        torch.testing.assert_close(gpu[key].cpu(), value)
