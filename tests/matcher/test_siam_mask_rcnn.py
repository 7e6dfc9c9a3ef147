"""Siamese Mask R-CNN: the L1 matching op, k-shot averaging, shapes, the matcher API with
masks in scene coordinates, shared scene passes, and strict checkpoints.

The network is untrained (random weights): these tests check the plumbing, not the
quality; ``tests/trainers/test_siam_mask_rcnn_training.py`` checks that it learns.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import matcher
from matcher.checkpoints.io import read_checkpoint, save_checkpoint
from matcher.crops import context_box, reference_crop
from matcher.errors import CheckpointError, ConfigError, InvalidArgumentError, NoTrackingModeError
from matcher.models.l1_matching import L1Fusion, average_shots, l1_match, pool_reference
from matcher.siam_mask_rcnn_matcher import DetectionReferenceFeatures, SiamMaskRCNNMatcher

TINY = "tiny/siam_mask_rcnn"
LEVELS = ("0", "1", "2", "3", "pool")


@pytest.fixture(scope="module")
def tiny() -> SiamMaskRCNNMatcher:
    torch.manual_seed(0)
    return matcher.build(TINY)


def _scene(seed: int = 0, size: tuple[int, int] = (180, 260)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _reference(seed: int, *, id: str | None = None) -> matcher.Reference:
    image = np.random.default_rng(100 + seed).integers(0, 256, (70, 50, 3), dtype=np.uint8)
    return matcher.Reference.from_image(image, (5, 8, 45, 66), id=id)


# -- the L1 matching op ------------------------------------------------------------------


def test_l1_match_against_a_hand_computation():
    scene = torch.tensor([[[[1.0, -2.0]], [[0.5, 3.0]]]])  # (1, 2, 1, 2)
    reference = torch.tensor([[2.0, 1.0], [0.0, 0.0]])  # (2, 2): two references
    out = l1_match(scene, reference)
    assert out.shape == (2, 4, 1, 2)
    expected_first = [[1.0, -2.0], [0.5, 3.0], [1.0, 4.0], [0.5, 2.0]]
    expected_second = [[1.0, -2.0], [0.5, 3.0], [1.0, 2.0], [0.5, 3.0]]
    torch.testing.assert_close(out[0, :, 0], torch.tensor(expected_first))
    torch.testing.assert_close(out[1, :, 0], torch.tensor(expected_second))
    paired = l1_match(torch.cat([scene, -scene]), reference)  # scene b against reference b
    torch.testing.assert_close(paired[0], out[0])
    torch.testing.assert_close(paired[1, 2:], (-scene[0] - reference[1, :, None, None]).abs())
    with pytest.raises(ValueError, match="channels"):
        l1_match(scene, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="pair"):
        l1_match(torch.zeros(2, 2, 1, 1), torch.zeros(3, 2))


def test_pooling_and_shot_averaging_are_plain_means():
    maps = torch.arange(24.0).reshape(2, 3, 2, 2)
    torch.testing.assert_close(pool_reference(maps), maps.flatten(2).sum(-1) / 4)
    vectors = torch.arange(12.0).reshape(4, 3)  # two references of two shots
    torch.testing.assert_close(average_shots(vectors, 2), (vectors[0::2] + vectors[1::2]) / 2)
    with pytest.raises(ValueError):
        average_shots(vectors, 3)


def test_fusion_mixes_each_level_with_its_own_1x1_conv():
    torch.manual_seed(0)
    fusion = L1Fusion(("a", "b"), in_channels=3, out_channels=5)
    scene = {"a": torch.randn(1, 3, 4, 6), "b": torch.randn(1, 3, 2, 3)}
    refs = {"a": torch.randn(2, 3), "b": torch.randn(2, 3)}
    out = fusion(scene, refs)
    assert list(out) == ["a", "b"]
    assert out["a"].shape == (2, 5, 4, 6) and out["b"].shape == (2, 5, 2, 3)
    conv = fusion.mix["b"]
    manual = torch.nn.functional.conv2d(l1_match(scene["b"], refs["b"]), conv.weight, conv.bias)
    torch.testing.assert_close(out["b"], manual)
    assert not torch.allclose(out["a"][0], out["a"][1])  # the reference matters


# -- the network ---------------------------------------------------------------------------


def test_reference_and_scene_encodings_have_the_documented_shapes(tiny):
    net = tiny.net
    det = tiny.recipe.model.detection
    refs = torch.rand(3, 2, 3, det.reference_size, det.reference_size)
    with torch.no_grad():
        vectors = net.encode_reference(refs)
        scene, _ = net.encode_scene([torch.rand(3, 200, 300)])
    assert tuple(vectors) == LEVELS
    assert all(v.shape == (3, det.fpn_channels) for v in vectors.values())
    padded = scene.images.tensors
    assert padded.shape[0] == 1 and max(scene.images.image_sizes[0]) == det.max_size
    assert scene.original_sizes == [(200, 300)]
    for stride, level in zip((4, 8, 16, 32, 64), LEVELS, strict=True):
        feats = scene.features[level]
        assert feats.shape[:2] == (1, det.fpn_channels)
        assert feats.shape[-1] == -(-padded.shape[-1] // stride)
    with pytest.raises(ValueError, match="reference crops"):
        net.encode_reference(torch.rand(1, 1, 3, 50, 50))


def test_k_shots_average_the_single_shot_vectors(tiny):
    size = tiny.recipe.model.detection.reference_size
    shots = torch.rand(3, 3, size, size)
    with torch.no_grad():
        together = tiny.net.encode_reference(shots)  # one reference, three shots
        alone = [tiny.net.encode_reference(shots[i : i + 1]) for i in range(3)]
    for level in LEVELS:
        mean = torch.stack([a[level][0] for a in alone]).mean(0)
        torch.testing.assert_close(together[level][0], mean, rtol=1e-4, atol=1e-5)


def test_training_forward_returns_the_losses_and_trains_every_part(tiny):
    torch.manual_seed(0)
    net = matcher.build(TINY).net.train()
    size = net.reference_size
    masks = torch.zeros(2, 120, 160, dtype=torch.uint8)
    masks[0, 20:60, 30:70] = 1
    masks[1, 50:110, 90:150] = 1
    target = {
        "boxes": torch.tensor([[30.0, 20.0, 70.0, 60.0], [90.0, 50.0, 150.0, 110.0]]),
        "labels": torch.ones(2, dtype=torch.int64),
        "masks": masks,
    }
    scenes = [torch.rand(3, 120, 160), torch.rand(3, 100, 140)]
    second = {"boxes": target["boxes"][:1], "labels": target["labels"][:1]}
    second["masks"] = masks[:1, :100, :140]
    losses = net(scenes, torch.rand(2, 1, 3, size, size), [target, second])
    assert set(losses) == {
        "loss_objectness",
        "loss_rpn_box_reg",
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for part in ("backbone", "fpn", "fusion", "rpn", "roi_heads"):
        grads = [p.grad for p in getattr(net, part).parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part
    with pytest.raises(ValueError, match="targets"):
        net(scenes, torch.rand(2, 1, 3, size, size))


# -- the matcher ---------------------------------------------------------------------------


def test_match_returns_instances_with_masks_and_polygons_in_scene_coordinates(tiny):
    scene = _scene(1)
    height, width = scene.shape[:2]
    result = tiny.match(_reference(0, id="sku-1"), scene, max_instances=7, score_threshold=0.0)
    assert result.reference_id == "sku-1" and result.scene_size == (height, width)
    assert 1 <= len(result.instances) <= 7
    scores = [inst.score for inst in result.instances]
    assert scores == sorted(scores, reverse=True)
    for inst in result.instances:
        x0, y0, x1, y1 = inst.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert inst.mask.shape == (height, width) and inst.mask.dtype == bool
        ys, xs = np.nonzero(inst.mask)
        if len(xs):  # pasted masks stay inside their box (1 pixel of padding)
            assert xs.min() >= x0 - 2 and xs.max() <= x1 + 1
            assert ys.min() >= y0 - 2 and ys.max() <= y1 + 1
        poly = np.asarray(inst.polygon)
        assert poly.shape[1] == 2 and len(poly) >= 3
        assert poly[:, 0].min() >= x0 - 3 and poly[:, 0].max() <= x1 + 3
        assert poly[:, 1].min() >= y0 - 3 and poly[:, 1].max() <= y1 + 3
    assert result.to_dict()["instances"][0]["mask"]["size"] == [height, width]
    strict = tiny.match(_reference(0), scene, score_threshold=1.0)
    assert all(inst.score >= 1.0 for inst in strict.instances)


def test_match_many_equals_separate_matches(tiny):
    scene = _scene(2)
    refs = [_reference(i, id=str(i)) for i in range(3)]
    together = tiny.match_many(refs, scene, max_instances=10, score_threshold=0.0)
    assert [r.reference_id for r in together] == ["0", "1", "2"]
    for ref, shared in zip(refs, together, strict=True):
        alone = tiny.match(ref, scene, max_instances=10, score_threshold=0.0)
        assert len(shared.instances) == len(alone.instances) > 0
        for a, b in zip(shared.instances, alone.instances, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-5)
            assert np.mean(a.mask != b.mask) < 1e-3
    assert tiny.match_many([], scene) == []


def test_encoded_and_k_shot_references(tiny):
    scene = _scene(3)
    ref = _reference(4, id="p")
    feats = tiny.encode_reference(ref)
    assert isinstance(feats, DetectionReferenceFeatures) and feats.crops.shape == (1, 96, 96, 3)
    reused = tiny.match(feats, scene, score_threshold=0.0)
    direct = tiny.match(ref, scene, score_threshold=0.0)
    assert [i.box for i in reused.instances] == [i.box for i in direct.instances]
    two = tiny.encode_reference([ref, _reference(5)])
    other = tiny.encode_reference(_reference(5))
    for level in LEVELS:
        mean = (feats.vectors[level] + other.vectors[level]) / 2
        torch.testing.assert_close(two.vectors[level], mean, rtol=1e-4, atol=1e-5)
    other_recipe = DetectionReferenceFeatures(feats.vectors, feats.crops, recipe="x")
    with pytest.raises(InvalidArgumentError, match="encoded by"):
        tiny.match(other_recipe, scene)
    with pytest.raises(InvalidArgumentError):
        tiny.encode_reference([])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"max_instances": 0}, "max_instances"), ({"score_threshold": 1.5}, "score_threshold")],
)
def test_bad_arguments_and_tracking_are_refused(tiny, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        tiny.match(_reference(0), _scene(), **kwargs)
    with pytest.raises(NoTrackingModeError, match="tracking mode"):
        tiny.tracker()


def test_reference_crop_keeps_the_aspect_and_adds_context():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 50:150] = 255  # a 100x20 white product
    assert context_box((50, 40, 150, 60), (100, 200), context=0.1) == (40, 38, 160, 62)
    crop = reference_crop(image, (50, 40, 150, 60), size=60, context=0.0)
    assert crop.shape == (60, 60, 3)
    rows = np.flatnonzero(crop[:, 30, 0] == 255)  # 100x20 -> 60x12, centred vertically
    assert (rows.min(), rows.max()) == (24, 35)
    assert tuple(crop[0, 0]) == (124, 116, 104)  # padding: the ImageNet mean colour


# -- recipes and checkpoints ----------------------------------------------------------------


def test_recipes_build_the_described_networks():
    r50 = matcher.load_recipe("siam_mask_rcnn_r50")
    det = r50.model.detection
    assert r50.family == "siam_mask_rcnn" and r50.inference.track is None
    assert (det.max_size, det.reference_size, det.fused_channels) == (1024, 192, 384)
    net = matcher.build("siam_mask_rcnn_r50").net
    assert net.backbone.layer4[0].conv3.out_channels == 2048  # ResNet-50 bottlenecks
    assert net.rpn.head.conv[0][0].in_channels == 384
    assert net.roi_heads.box_predictor.cls_score.out_features == 2  # class-agnostic
    assert net.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 2
    with pytest.raises(ConfigError, match="anchor_sizes"):
        matcher.build(TINY, overrides=["model.detection.rpn.anchor_sizes=[16, 32]"])
    with pytest.raises(matcher.UnknownComponentError, match="resnet50"):
        matcher.build(TINY, overrides=["model.backbone.name=vgg16"])


def test_own_checkpoint_round_trip_and_wrong_files(tiny, tmp_path):
    torch.manual_seed(3)
    m = matcher.build(TINY)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = save_checkpoint(tmp_path / "smr.pth", m.net, m.recipe.to_dict())
    assert read_checkpoint(path).recipe["family"] == "siam_mask_rcnn"
    for loaded in (matcher.load(None, path), matcher.load(TINY, path)):
        assert isinstance(loaded, SiamMaskRCNNMatcher) and loaded.name == TINY
        for key, value in m.net.state_dict().items():
            assert torch.equal(loaded.net.state_dict()[key], value), key
    scene, ref = _scene(4), _reference(6)
    assert [i.box for i in matcher.load(None, path).match(ref, scene).instances] == [
        i.box for i in m.match(ref, scene).instances
    ]
    fc = matcher.build("siamfc_alexnet")
    other = save_checkpoint(tmp_path / "fc.pth", fc.net, fc.recipe.to_dict())
    with pytest.raises(CheckpointError, match="missing") as err:
        matcher.load(TINY, other)
    assert TINY in str(err.value)
    narrow = matcher.build(TINY, overrides=["model.detection.fpn_channels=32"])
    plain = tmp_path / "narrow.pth"
    torch.save(narrow.net.state_dict(), plain)
    with pytest.raises(CheckpointError, match="wrong shape") as err:
        matcher.load(TINY, plain)
    assert "Siamese Mask R-CNN" in str(err.value)
