"""Correlation ops against a brute-force per-pair loop, in all three pairing modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from matcher.models.heads.xcorr import xcorr_depthwise, xcorr_naive, xcorr_upchannel


def _pairs(b: int, k: int) -> list[tuple[int, int]]:
    n = max(b, k)
    return [(i if b > 1 else 0, i if k > 1 else 0) for i in range(n)]


def _brute(x, z, kind, outputs=1):
    rows = []
    for xi, zi in _pairs(x.shape[0], z.shape[0]):
        xs, zs = x[xi : xi + 1], z[zi]
        if kind == "naive":
            rows.append(F.conv2d(xs, zs[None]))
        elif kind == "depthwise":
            chans = [F.conv2d(xs[:, c : c + 1], zs[c][None, None]) for c in range(x.shape[1])]
            rows.append(torch.cat(chans, dim=1))
        else:
            c = x.shape[1]
            kernels = zs.reshape(outputs, c, *zs.shape[-2:])
            rows.append(F.conv2d(xs, kernels))
    return torch.cat(rows)


@pytest.mark.parametrize("b, k", [(3, 3), (1, 4), (4, 1), (1, 1)])
def test_naive(b, k):
    torch.manual_seed(0)
    x, z = torch.randn(b, 5, 13, 11), torch.randn(k, 5, 4, 3)
    torch.testing.assert_close(xcorr_naive(x, z), _brute(x, z, "naive"))


@pytest.mark.parametrize("b, k", [(3, 3), (1, 4), (4, 1), (1, 1)])
def test_depthwise(b, k):
    torch.manual_seed(1)
    x, z = torch.randn(b, 6, 12, 10), torch.randn(k, 6, 5, 5)
    torch.testing.assert_close(xcorr_depthwise(x, z), _brute(x, z, "depthwise"))


@pytest.mark.parametrize("b, k", [(2, 2), (1, 3), (3, 1)])
def test_upchannel(b, k):
    torch.manual_seed(2)
    outputs, c = 4, 5
    x, z = torch.randn(b, c, 9, 9), torch.randn(k, outputs * c, 3, 3)
    torch.testing.assert_close(xcorr_upchannel(x, z, outputs), _brute(x, z, "up", outputs))


def test_incompatible_batches_raise():
    with pytest.raises(ValueError, match="cannot pair"):
        xcorr_naive(torch.zeros(2, 1, 5, 5), torch.zeros(3, 1, 2, 2))


def test_ops_leave_inputs_unchanged():
    x, z = torch.randn(1, 4, 9, 9), torch.randn(3, 4, 3, 3)
    x0, z0 = x.clone(), z.clone()
    xcorr_depthwise(x, z)
    xcorr_naive(x, z)
    assert torch.equal(x, x0) and torch.equal(z, z0)


@pytest.mark.parametrize("op", ["naive", "depthwise", "upchannel"])
def test_one_search_and_one_template_keep_a_channels_last_layout(op):
    """A prepared network's search is channels-last; a batch of one paired with one template
    must reach the convolution as such (oneDNN's fast kernels), and give the same values."""
    torch.manual_seed(3)
    x = torch.randn(1, 8, 17, 19).contiguous(memory_format=torch.channels_last)
    z = torch.randn(1, 8 * (2 if op == "upchannel" else 1), 5, 5)
    if op == "naive":
        out, expected = xcorr_naive(x, z), _brute(x, z, "naive")
    elif op == "depthwise":
        out, expected = xcorr_depthwise(x, z), _brute(x, z, "depthwise")
    else:
        out, expected = xcorr_upchannel(x, z, 2), _brute(x, z, "upchannel", outputs=2)
    torch.testing.assert_close(out, expected)
    if op == "depthwise":
        assert out.is_contiguous(memory_format=torch.channels_last)
