"""``inference.precision: bf16``: prepared convolutions computing in bfloat16 with float32
accumulation, only where the device has bfloat16 in hardware, and float32 everywhere else."""

from __future__ import annotations

import copy
import io
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import matcher
import matcher.inference_prep as prep
from matcher.errors import ConfigError
from matcher.inference_pack import PackedConv2d, bf16_native, set_compute_dtype
from matcher.inference_prep import precision_of, prepare_for_inference
from matcher.recipes import load_recipe
from tests.fixtures import dequantised_weights, fixture_io, needs_fixtures
from tests.helpers import clutter_scene, iou, paste, product_image

#: Largest relative error (to the output's largest magnitude) of the bfloat16 SiamRPN++
#: AlexNet's heads against the upstream float32 outputs (measured: 1.0 % cls, 1.6 % loc).
BOUND = 0.05

needs_bf16 = pytest.mark.skipif(not bf16_native(), reason="this CPU has no bfloat16 hardware")


def _low(conv: nn.Conv2d) -> PackedConv2d:
    packed = PackedConv2d.from_conv(conv)
    set_compute_dtype(packed, torch.bfloat16)
    return packed


@pytest.mark.parametrize(
    "conv",
    [
        {"in_channels": 3, "out_channels": 16, "kernel_size": 7, "stride": 2},
        {"in_channels": 32, "out_channels": 48, "kernel_size": 3, "padding": 2, "dilation": 2},
        {"in_channels": 32, "out_channels": 64, "kernel_size": 3, "padding": 1, "groups": 4},
    ],
    ids=["first_layer", "dilated", "grouped"],
)
def test_a_bf16_convolution_rounds_inputs_and_weights_and_returns_float32(conv):
    torch.manual_seed(0)
    plain = nn.Conv2d(**conv).eval()
    low = _low(plain)
    x = torch.randn(2, conv["in_channels"], 29, 29)
    with torch.no_grad():
        out = low(x)
        exact = plain(x)
        rounded = F.conv2d(
            x.bfloat16().double(),
            plain.weight.bfloat16().double(),
            plain.bias.bfloat16().double(),
            plain.stride,
            plain.padding,
            plain.dilation,
            plain.groups,
        )
    assert out.dtype == torch.float32 and out.shape == exact.shape
    # the sums of the rounded values, accumulated in float32 (and the output rounded to bf16)
    torch.testing.assert_close(out.double(), rounded, rtol=1e-2, atol=1e-2)
    error = (out - exact).abs().max().item() / exact.abs().max().item()
    assert 1e-5 < error < 3e-2  # not float32 any more, and close to it


def test_a_bf16_convolution_follows_its_weight_and_copies_keep_the_precision():
    torch.manual_seed(0)
    low = _low(nn.Conv2d(8, 16, 3, padding=1).eval())
    other = nn.Conv2d(8, 16, 3, padding=1).eval()
    x = torch.randn(1, 8, 20, 20)
    with torch.no_grad():
        low(x)
        low.load_state_dict(other.state_dict())  # the bf16 copy of the weight is stale now
        expected = other(x)
        torch.testing.assert_close(low(x), expected, rtol=3e-2, atol=3e-2)
        buffer = io.BytesIO()
        torch.save(low, buffer)
        buffer.seek(0)
        for copied in (copy.deepcopy(low), torch.load(buffer, weights_only=False)):
            assert copied.compute_dtype == torch.bfloat16 and copied._low is None
            torch.testing.assert_close(copied(x), low(x), rtol=0, atol=0)


def test_a_bf16_convolution_trains_and_records_autograd_in_float32():
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 4, 3)
    low = _low(plain)
    x = torch.randn(2, 4, 9, 9)
    out = low(x)  # training mode: the plain float32 convolution
    torch.testing.assert_close(out, plain(x), rtol=0, atol=0)
    low.eval()
    out = low(x.requires_grad_())  # autograd recording: float32 too
    out.sum().backward()
    assert x.grad is not None and low._low is None


def test_depthwise_convolutions_stay_float32():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16)).eval()
    for k, conv in enumerate(net):
        net[k] = PackedConv2d.from_conv(conv)
    assert set_compute_dtype(net, torch.bfloat16) == 1
    assert net[0].compute_dtype == torch.bfloat16 and net[1].compute_dtype is None
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        plain = F.conv2d(x, net[1].weight, net[1].bias, padding=1, groups=16)
        torch.testing.assert_close(net[1](x), plain, rtol=1e-5, atol=1e-5)


def test_set_compute_dtype_refuses_other_types():
    with pytest.raises(ValueError, match="compute dtype"):
        set_compute_dtype(nn.Conv2d(1, 1, 1), torch.float64)


def test_the_recipe_key_takes_fp32_or_bf16():
    assert load_recipe("siammask_small").inference.precision == "fp32"
    assert load_recipe("siamrpnpp_r50", ["inference.precision=bf16"]).inference.precision == "bf16"
    with pytest.raises(ConfigError, match=r"inference\.precision"):
        load_recipe("siammask_small", ["inference.precision=fp16"])
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(nn.Conv2d(1, 1, 1), precision="half")


@needs_bf16
def test_load_trained_prepares_the_default_and_its_embedder_in_bf16():
    product = product_image("coffee")
    box = (250, 160, 390, 300)
    scene = paste(clutter_scene(480, 640, seed=3), product, box)
    fp32 = matcher.load_trained("siammask_small")
    bf16 = matcher.load_trained("siammask_small", overrides=["inference.precision=bf16"])
    assert precision_of(fp32.net) == "fp32" and precision_of(bf16.net) == "bf16"
    assert precision_of(bf16.verifier.embedder) == "bf16"
    convs = [m for m in bf16.net.modules() if isinstance(m, PackedConv2d)]
    assert convs and all(m.compute_dtype == torch.bfloat16 for m in convs)
    ref = matcher.Reference.from_image(product)
    a = fp32.match(fp32.encode_reference(ref), scene).instances
    b = bf16.match(bf16.encode_reference(ref), scene).instances
    assert a and b
    assert iou(a[0].box, box) >= 0.7 and iou(b[0].box, box) >= 0.7
    assert np.allclose(a[0].box, b[0].box, atol=3.0)
    assert abs(a[0].score - b[0].score) < 0.05


def test_without_bf16_hardware_the_network_stays_float32(monkeypatch, caplog):
    monkeypatch.setattr(prep, "bf16_native", lambda device: False)
    torch.manual_seed(0)
    net = matcher.load("siamrpnpp_alexnet").net
    reference = copy.deepcopy(net)
    prepare_for_inference(reference)
    with caplog.at_level(logging.WARNING, logger="matcher.inference_prep"):
        prepare_for_inference(net, precision="bf16")
    assert "computing in float32" in caplog.text
    assert precision_of(net) == "fp32"
    assert all(m.compute_dtype is None for m in net.modules() if isinstance(m, PackedConv2d))
    x = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        torch.testing.assert_close(net.backbone(x), reference.backbone(x), rtol=0, atol=0)


def _relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.float() - ref.float()).abs().max() / ref.float().abs().max())


@needs_bf16
@needs_fixtures
def test_bf16_stays_near_the_upstream_outputs_but_outside_the_parity_tolerance(tmp_path):
    """PySOT's float32 outputs on the AlexNet fixture's weights: bfloat16 is within a few
    percent of them (a wrong layout or a stale weight would be far off), and further than
    the parity tolerance (it really computed in bfloat16).

    Only the AlexNet: the fixtures' deeper networks (MobileNetV2, ResNet-50) have random
    weights that amplify rounding about a hundredfold (float32's 1e-6 became the fixtures'
    1.5e-4 spread between one and two threads), so bfloat16's 4e-3 ends 30-65 % off at
    their heads; a trained network is not measured here (``benchmarks/RESULTS.md``)."""
    fixture = "siamrpn_alex_dwxcorr"
    weights = tmp_path / "w.pth"
    torch.save(dequantised_weights(fixture), weights)
    m = matcher.load("siamrpnpp_alexnet", weights, prepare=True, precision="bf16")
    assert precision_of(m.net) == "bf16"
    io = fixture_io(fixture)
    inputs, expected = io["network"]["inputs"], io["network"]["outputs"]
    with torch.no_grad():
        zf = m.net.features(inputs["template"].float())
        zk = m.net.head.encode_template(zf)
        out = m.net.correlate(zk, m.net.encode_search(inputs["search"].float()))
    errors = {k: _relative_error(out[k], expected[k]) for k in ("cls", "loc")}
    assert max(errors.values()) < BOUND, errors
    assert max(errors.values()) > 1e-4, errors
