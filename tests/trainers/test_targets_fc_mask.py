"""Target assignment against hand-computed cases and negative-pair rules: the response
(SiamFC), point (SiamFC++) and mask (SiamMask) targets, and the checks every registered
family passes (finite targets, inputs left alone, errors, GPU equal to CPU)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matcher.errors import ConfigError, InvalidArgumentError, UnknownComponentError
from matcher.recipes import load_recipe
from tests.trainers.target_helpers import MASK_GEO, PARAMS, RPN_GEO, gen, make_batch, random_batch
from trainers.targets import (
    TARGETS,
    TargetGeometry,
    build_targets,
    crop_mask_windows,
    target_geometry,
)

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
