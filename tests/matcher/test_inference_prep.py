"""Preparing a network for inference: batch norms folded exactly, convolutions packed for the
CPU (same results to float rounding), nothing else touched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import matcher
from matcher.errors import ConfigError
from matcher.inference_pack import MAX_PACKED, PackedConv2d, packing_available
from matcher.inference_prep import is_prepared, prepare_for_inference

needs_onednn = pytest.mark.skipif(not packing_available(), reason="torch built without oneDNN")

#: One recipe per backbone family with batch norms.
RECIPES = [
    "siamrpnpp_alexnet",
    "siamrpnpp_mobilenetv2",
    "siamrpnpp_r50",
    "siammask_r50",
    "siamfcpp_googlenet",
    "siamfc_alexnet",
]


def _batch_norms(net: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_batch_norm_is_folded_and_the_outputs_stay(recipe):
    torch.manual_seed(0)
    plain = matcher.load(recipe)
    for module in plain.net.modules():  # running statistics far from the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    folded = matcher.load(recipe)
    folded.net.load_state_dict(plain.net.state_dict())
    before = _batch_norms(folded.net)
    assert before > 0
    assert prepare_for_inference(folded.net) == before
    assert _batch_norms(folded.net) == 0 and is_prepared(folded.net)
    assert type(folded.net.backbone) is type(plain.net.backbone)  # modules stay in place
    packed = sum(isinstance(m, PackedConv2d) for m in folded.net.modules())
    assert packed == (
        sum(isinstance(m, nn.Conv2d) for m in folded.net.modules()) * packing_available()
    )
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (300, 360, 3), dtype=np.uint8)
    box = (120, 100, 220, 190)
    trackers = [m.tracker() for m in (plain, folded)]
    for tracker in trackers:
        tracker.init(frame, box)
    for step in range(3):  # the first search runs on plain weights, the next ones packed
        shifted = np.roll(frame, 4 * (step + 1), axis=1)
        a, b = (t.track(shifted) for t in trackers)
        assert np.isfinite(a.box).all() and np.isfinite(a.score)
        np.testing.assert_allclose(a.box, b.box, rtol=0, atol=1e-3)
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_only_a_convolution_used_once_absorbs_its_norm():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.norm = nn.BatchNorm2d(4)
            self.twice = nn.Conv2d(4, 4, 1)
            self.after = nn.BatchNorm2d(4)
            self.alone = nn.BatchNorm2d(4)  # follows a pooling, not a convolution

        def forward(self, x):
            x = self.norm(self.conv(x))
            x = self.after(self.twice(x)) + self.twice(x)
            return self.alone(torch.relu(x))

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = Shared()

    net = Holder().eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 16, 16)
    expected = net.body(x)
    assert prepare_for_inference(net) == 1
    assert isinstance(net.body.norm, nn.Identity)
    assert isinstance(net.body.after, nn.BatchNorm2d) and isinstance(net.body.alone, nn.BatchNorm2d)
    torch.testing.assert_close(net.body(x), expected, rtol=1e-5, atol=1e-5)


def test_load_trained_prepares_and_the_trainer_refuses_a_prepared_network(tmp_path):
    from trainers.loop import Trainer

    m = matcher.load_trained("siamfc_pixels")  # no weights to learn; prepared by default
    assert is_prepared(m.net)
    assert not is_prepared(matcher.load_trained("siamfc_pixels", prepare=False).net)
    assert not is_prepared(matcher.load("siamrpnpp_alexnet").net)
    detector = matcher.load("siam_mask_rcnn_r50", prepare=True).net  # torchvision heads: NCHW
    assert is_prepared(detector)
    assert not any(isinstance(x, PackedConv2d) for x in detector.modules())

    class Task:
        net = matcher.load("siamrpnpp_alexnet", prepare=True).net

    with pytest.raises(ConfigError, match="prepared for inference"):
        Trainer(
            recipe=matcher.load_recipe("siamrpnpp_alexnet"),
            task=Task(),
            train_data=None,
            val_data=None,
            ctx=None,
            out_dir=tmp_path,
        )


def test_match_many_runs_the_folded_rpn_heads_alike():
    """The depth-wise heads' channel-major path reads the batch norm: folded, it reads the
    convolution's bias instead."""
    # a fixed draw of the untrained network: most draws regress every box out of the
    # scene, and the suite's shared random state made the outcome depend on test order
    torch.manual_seed(3)
    plain = matcher.load("siamrpnpp_alexnet")
    folded = matcher.load("siamrpnpp_alexnet")
    folded.net.load_state_dict(plain.net.state_dict())
    prepare_for_inference(folded.net)
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    reference = matcher.Reference.from_image(scene[40:120, 60:140].copy())
    results = []
    for m in (plain, folded):
        feats = m.encode_reference(reference)
        results.append(m.match_many([feats, feats], scene, score_threshold=0.0))
    for a, b in zip(*results, strict=True):
        assert len(a.instances) == len(b.instances) > 0
        np.testing.assert_allclose(
            [i.box for i in a.instances], [i.box for i in b.instances], atol=1e-2
        )


@pytest.mark.parametrize("prepare", [False, True], ids=["as_built", "prepared"])
def test_the_depthwise_head_scores_several_templates_as_one_batch(prepare):
    """Match mode's template-by-template head (``DepthwiseXCorr.scores``) against the
    head on the batch correlation of every template at once (one grouped convolution)."""
    from matcher.models.heads.rpn import DepthwiseXCorr

    torch.manual_seed(5)
    xcorr = DepthwiseXCorr(16, 16, 10).eval()
    bn = xcorr.head[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    search, kernels = torch.randn(1, 16, 13, 15), torch.randn(3, 16, 5, 5)
    if prepare:
        prepare_for_inference(xcorr)
        search = search.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        many = xcorr.scores(kernels, search)
        batch, feature = xcorr.correlate(kernels, search)
        alone = xcorr.scores(kernels[1:2], search)
    assert many.shape == batch.shape == (3, 10, 9, 11) and feature.shape == (3, 16, 9, 11)
    torch.testing.assert_close(many, batch, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(many[1:2], alone, atol=1e-5, rtol=1e-5)


@needs_onednn
@pytest.mark.parametrize(
    "conv",
    [
        {"in_channels": 3, "out_channels": 16, "kernel_size": 11, "stride": 2},
        {"in_channels": 32, "out_channels": 48, "kernel_size": 3, "padding": 2, "dilation": 2},
        {"in_channels": 32, "out_channels": 32, "kernel_size": 3, "padding": 1, "groups": 32},
        {"in_channels": 32, "out_channels": 64, "kernel_size": 1, "bias": False},
    ],
    ids=["first_layer", "dilated", "depthwise", "pointwise"],
)
def test_a_packed_convolution_computes_the_plain_one(conv):
    torch.manual_seed(0)
    plain = nn.Conv2d(**conv).eval()
    packed = PackedConv2d.from_conv(plain)
    assert packed.weight is plain.weight and list(packed.state_dict()) == list(plain.state_dict())
    with torch.no_grad():
        for size in (33, 33, 33, 40, 40, 33, 47, 47, 52, 52):  # plain, packed, then other shapes
            x = torch.randn(1, conv["in_channels"], size, size)
            expected = plain(x)
            out = packed(x)
            assert out.shape == expected.shape
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
            assert len(packed._packed) <= MAX_PACKED
    assert len(packed._packed) == MAX_PACKED


@needs_onednn
def test_a_packed_convolution_follows_its_weight_and_copies_without_its_cache():
    import copy
    import io

    torch.manual_seed(0)
    other = nn.Conv2d(8, 16, 3, padding=1).eval()
    packed = PackedConv2d.from_conv(nn.Conv2d(8, 16, 3, padding=1).eval())
    x = torch.randn(1, 8, 20, 20)
    with torch.no_grad():
        packed(x), packed(x)
        assert len(packed._packed) == 1
        packed.load_state_dict(other.state_dict())  # the packed copy is stale now
        torch.testing.assert_close(packed(x), other(x), rtol=1e-5, atol=1e-5)
        clone = copy.deepcopy(packed)
        buffer = io.BytesIO()
        torch.save(packed, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        for copied in (clone, loaded):
            assert len(copied._packed) == 0
            torch.testing.assert_close(copied(x), other(x), rtol=1e-5, atol=1e-5)


def test_a_packed_convolution_is_a_plain_one_for_training_and_autograd():
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 4, 3)
    packed = PackedConv2d.from_conv(plain)
    x = torch.randn(2, 4, 9, 9)
    packed(x).sum().backward()  # eval or not, autograd recording takes the plain path
    assert plain.weight.grad is not None
    packed.eval().double()  # not float32: the plain convolution
    with torch.no_grad():
        out = packed(x.double())
    assert out.dtype == torch.float64 and out.is_contiguous()
