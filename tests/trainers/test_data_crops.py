"""Crop geometry (one affine warp for image, box and mask) and the pair augmentation:
boxes and masks stay on the object's pixels through shift, scale, flip, blur, colour and
grey."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from matcher.errors import InvalidArgumentError
from tests.trainers.data_layouts import box_iou as iou
from tests.trainers.data_layouts import bright, draw, mask_iou, region_box
from trainers.augment import Jpeg, MotionBlur, PairAugment, PcaColor, Relight, line_kernel
from trainers.data.crops import (
    context_side,
    crop_matrix,
    jittered_crop_matrix,
    mean_color,
    warp_box,
    warp_image,
    warp_mask,
)

BOX = (30, 20, 70, 52)  # the bright object of draw([BOX]) in a 96x128 image


def _object():
    image = draw([BOX], seed=0)
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 1
    return image, mask, np.asarray(BOX, np.float64)


def test_context_side_is_the_pysot_formula():
    assert context_side(np.array([0, 0, 40, 40]), 0.5) == pytest.approx(80.0)
    w, h = 30.0, 10.0
    p = 0.5 * (w + h)
    assert context_side(np.array([5, 5, 5 + w, 5 + h]), 0.5) == pytest.approx(
        np.sqrt((w + p) * (h + p))
    )


def test_crop_matrix_centres_the_box_at_the_expected_size():
    box = np.array([30.0, 20.0, 70.0, 60.0])  # 40x40: s_z = 80
    m = crop_matrix((50.0, 40.0), (80.0, 80.0), 127)
    out = warp_box(box, m, 127)
    np.testing.assert_allclose(out, [31.75, 31.75, 95.25, 95.25], atol=1e-4)
    shifted = warp_box(box, crop_matrix((50.0, 40.0), (80.0, 80.0), 127, offset=(5, -3)), 127)
    np.testing.assert_allclose(shifted - out, [5, -3, 5, -3], atol=1e-4)


@pytest.mark.parametrize("seed", range(12))
def test_warped_image_mask_and_box_stay_aligned(seed):
    image, mask, box = _object()
    rng = np.random.default_rng(seed)
    out = int(rng.choice([127, 255]))
    side = context_side(box, 0.5) * (2.0 if out == 255 else 1.0)
    m = jittered_crop_matrix(box, side=side, out_size=out, max_shift=30, max_scale=0.3, rng=rng)
    crop = warp_image(image, m, out, fill=mean_color(image))
    crop_mask = warp_mask(mask, m, out).astype(bool)
    crop_box = warp_box(box, m, out)
    region = bright(crop.transpose(2, 0, 1))
    assert mask_iou(region, crop_mask) >= 0.9
    assert iou(region_box(region), crop_box) >= 0.9
    assert iou(region_box(crop_mask), crop_box) >= 0.95


def test_outside_of_the_image_is_filled_with_the_mean_colour():
    image, mask, _ = _object()
    m = crop_matrix((0.0, 0.0), (200.0, 200.0), 100)  # image corner at the crop centre
    crop = warp_image(image, m, 100, fill=mean_color(image))
    np.testing.assert_allclose(crop[5, 5], np.round(image.reshape(-1, 3).mean(0)), atol=1)
    assert warp_mask(mask, m, 100)[:40, :40].sum() == 0


def test_jitter_bounds_and_zero_jitter_is_exact():
    box = np.array([30.0, 20.0, 70.0, 60.0])
    exact = jittered_crop_matrix(
        box, side=80.0, out_size=127, max_shift=0, max_scale=0, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(exact, crop_matrix((50.0, 40.0), (80.0, 80.0), 127))
    for seed in range(50):
        m = jittered_crop_matrix(
            box, side=80.0, out_size=127, max_shift=4, max_scale=0.05,
            rng=np.random.default_rng(seed),
        )  # fmt: skip
        b = warp_box(box, m, 127)
        centre = (b[:2] + b[2:]) / 2
        assert np.all(np.abs(centre - 63.5) <= 4 + 1e-4)
        size = b[2:] - b[:2]
        assert np.all(size >= 63.5 / 1.05 - 1e-3) and np.all(size <= 63.5 / 0.95 + 1e-3)


# -- augmentation -------------------------------------------------------------------------


def _pair(seed: int = 0):
    image, mask, box = _object()
    rng = np.random.default_rng(seed)
    tm = jittered_crop_matrix(
        box, side=context_side(box, 0.5), out_size=127, max_shift=4, max_scale=0.05, rng=rng
    )
    sm = jittered_crop_matrix(
        box, side=context_side(box, 0.5) * 2, out_size=255, max_shift=40, max_scale=0.2, rng=rng
    )
    fill = mean_color(image)

    def tensors(m, out):
        img = tv_tensors.Image(
            torch.from_numpy(warp_image(image, m, out, fill=fill)).permute(2, 0, 1)
        )
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(warp_box(box, m, out))[None], format="XYXY", canvas_size=(out, out)
        )
        return img, boxes, tv_tensors.Mask(torch.from_numpy(warp_mask(mask, m, out)))

    t_img, t_box, _ = tensors(tm, 127)
    s_img, s_box, s_mask = tensors(sm, 255)
    return (t_img, t_box), (s_img, s_box, s_mask)


EVERYTHING = {"blur": 0.5, "motion_blur": 0.5, "flip": 0.5, "color": 1.0, "gray": 0.5}


@pytest.mark.parametrize("seed", range(16))
def test_augmentation_keeps_boxes_and_masks_on_the_object(seed):
    template, search = _pair(seed)
    (t_img, t_box), (s_img, s_box, s_mask) = PairAugment(**EVERYTHING)(template, search, seed=seed)
    assert isinstance(t_box, tv_tensors.BoundingBoxes) and isinstance(s_mask, tv_tensors.Mask)
    assert t_img.dtype == s_img.dtype == torch.uint8
    region = bright(s_img.numpy())
    assert mask_iou(region, s_mask.numpy().astype(bool)) >= 0.9
    assert iou(region_box(region), s_box[0].numpy()) >= 0.9
    assert iou(region_box(bright(t_img.numpy())), t_box[0].numpy()) >= 0.9


def test_flip_mirrors_boxes_and_masks():
    template, search = _pair()
    (t_img, _), (s_img, s_box, s_mask) = PairAugment(flip=1.0)(template, search, seed=0)
    x0, y0, x1, y1 = search[1][0].tolist()
    np.testing.assert_allclose(s_box[0].tolist(), [255 - x1, y0, 255 - x0, y1], atol=1e-4)
    assert torch.equal(s_mask, search[2].flip(-1))
    assert torch.equal(s_img, search[0].flip(-1))
    assert torch.equal(t_img, template[0].flip(-1))


def test_flips_are_independent_and_grey_is_joint():
    flips, greys = set(), set()
    for seed in range(40):
        template, search = _pair()
        (t_img, _), (s_img, _, _) = PairAugment(flip=0.5, gray=0.5)(template, search, seed=seed)
        flips.add(
            (torch.equal(t_img, template[0].flip(-1)), torch.equal(s_img, search[0].flip(-1)))
        )
        t_grey = bool((t_img[0] == t_img[1]).all() and (t_img[1] == t_img[2]).all())
        s_grey = bool((s_img[0] == s_img[1]).all() and (s_img[1] == s_img[2]).all())
        greys.add((t_grey, s_grey))
    assert flips == {(False, False), (False, True), (True, False), (True, True)}
    assert greys == {(False, False), (True, True)}


def test_augmentation_is_deterministic_by_seed_and_leaves_inputs_and_torch_rng_alone():
    template, search = _pair()
    before = copy.deepcopy((template, search))
    state = torch.get_rng_state()
    aug = PairAugment(**EVERYTHING)
    a = aug(template, search, seed=7)
    b = aug(template, search, seed=7)
    c = aug(template, search, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))
    assert not torch.equal(a[1][0], c[1][0])
    for x, y in zip((*before[0], *before[1]), (*template, *search), strict=True):
        assert torch.equal(x, y)


def test_identity_augmentation_returns_the_inputs():
    template, search = _pair()
    aug = PairAugment()
    assert aug.is_identity
    assert aug(template, search, seed=0) == (template, search)


def test_pca_colour_offsets_channels_and_motion_blur_keeps_geometry():
    img = tv_tensors.Image(torch.full((3, 20, 20), 128, dtype=torch.uint8))
    torch.manual_seed(0)
    out = PcaColor(1.0)(img)
    assert out.dtype == torch.uint8 and not torch.equal(out, img)
    assert (out - out[:, :1, :1]).abs().max() == 0  # a constant offset per channel
    k = line_kernel(9, 30.0)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0)
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[2.0, 2, 8, 8]]), format="XYXY", canvas_size=(20, 20)
    )
    stripe = img.clone()
    stripe[:, :, 10:] = 255
    blurred, same = MotionBlur(5, 9)(tv_tensors.Image(stripe), boxes)
    assert torch.equal(same, boxes)
    assert blurred.shape == stripe.shape and not torch.equal(blurred, stripe)


def test_relight_changes_light_colour_temperature_and_shadow_as_drawn():
    grey = tv_tensors.Image(torch.full((3, 8, 40), 100, dtype=torch.uint8))
    relight = Relight()
    flat = {"gain": 1.5, "contrast": 1.0, "warmth": 0.2, "floor": 1.0, "angle": 0.0}
    out = relight.transform(grey, flat)
    assert out[:, 0, 0].tolist() == [180, 150, 120]  # 100 * 1.5 * (1.2, 1, 0.8)
    assert (out == out[:, :1, :1]).all()  # no shadow at floor 1
    shadow = dict(flat, gain=1.0, warmth=0.0, floor=0.5)  # darker towards +x
    column = relight.transform(grey, shadow)[1, 0].float()
    assert column[0] > column[-1] >= 50 and (column.diff() <= 0).all()
    contrast = dict(flat, gain=1.0, warmth=0.0, contrast=0.5)
    assert relight.transform(grey, contrast)[1, 0, 0] == 114  # (100 - 128) / 2 + 128
    torch.manual_seed(0)
    draws = [relight.make_params([]) for _ in range(200)]
    assert min(d["gain"] for d in draws) >= 0.5 and max(d["gain"] for d in draws) <= 1.6
    assert min(d["warmth"] for d in draws) < -0.1 and max(d["warmth"] for d in draws) > 0.1


def test_jpeg_reencodes_at_the_drawn_quality():
    rng = np.random.default_rng(0)
    noisy = tv_tensors.Image(torch.from_numpy(rng.integers(0, 256, (3, 48, 64), dtype=np.uint8)))
    low = Jpeg((10, 10))(noisy)
    high = Jpeg((95, 95))(noisy)
    assert low.shape == noisy.shape and low.dtype == torch.uint8
    error = [float((x.float() - noisy.float()).abs().mean()) for x in (low, high)]
    assert error[0] > error[1] > 0  # lower quality, larger error
    with pytest.raises(InvalidArgumentError):
        Jpeg((50, 10))


def test_relight_and_jpeg_touch_only_the_search_pixels():
    template, search = _pair(3)
    (t_img, t_box), (s_img, s_box, s_mask) = PairAugment(relight=1.0, jpeg=1.0, color=0.0)(
        template, search, seed=3
    )
    assert torch.equal(t_img, template[0]) and torch.equal(t_box, template[1])
    assert torch.equal(s_box, search[1]) and torch.equal(s_mask, search[2])
    assert not torch.equal(s_img, search[0])
    assert not PairAugment(jpeg=0.5).is_identity and not PairAugment(relight=0.5).is_identity


def test_bad_settings_raise():
    with pytest.raises(InvalidArgumentError):
        PairAugment(flip=1.5)
    with pytest.raises(InvalidArgumentError):
        PairAugment(color=-1.0)
    with pytest.raises(InvalidArgumentError):
        PairAugment(relight=2.0)
    with pytest.raises(InvalidArgumentError):
        PairAugment(jpeg=-0.1)
    with pytest.raises(InvalidArgumentError):
        MotionBlur(9, 3)
