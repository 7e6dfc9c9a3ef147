"""SiamFC++'s GoogLeNet: a pruned Inception-v3 (video_analyst ``Inception3``).

Registered as ``googlenet_siamfcpp``. The stages are torchvision's Inception-v3 up to
``Mixed_6e`` under torchvision's names (``Conv2d_1a_3x3`` ... ``Mixed_6e``, each basic
block a bias-free convolution, BN with epsilon 1e-3 and ReLU), with two changes for
tracking: the max-pool after ``Conv2d_4a_3x3`` is removed (total stride 8), and the
output is cropped by ``crop_pad`` cells on every side before ``channel_reduce`` (1x1
conv 768 -> 256 with bias, BN, no ReLU). ``Mixed_7*`` and the classifier are absent.

The input transform is part of the network, as in the original: the backbone takes raw
0-255 images in BGR order, reverses the channels and maps values to ``(x - 127.5) / 127.5``.

Geometry: 127 -> 256x5x5, 303 -> 256x27x27; one more search stride of 8 pixels adds one
cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matcher.errors import ConfigError
from matcher.models.backbones.registry import BACKBONES
from matcher.models.layers import ConvBNReLU

_HALF_RANGE = 255 / 2


class _Basic(ConvBNReLU):
    """Inception's basic block: bias-free conv, BN, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        bn_eps: float,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=False,
            bn_eps=bn_eps,
        )


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled 1x1 branches, concatenated.

    Output width ``64 + 64 + 96 + pool_features``.
    """

    def __init__(self, in_channels: int, pool_features: int, *, bn_eps: float) -> None:
        super().__init__()
        self.branch1x1 = _Basic(in_channels, 64, 1, bn_eps=bn_eps)
        self.branch5x5_1 = _Basic(in_channels, 48, 1, bn_eps=bn_eps)
        self.branch5x5_2 = _Basic(48, 64, 5, padding=2, bn_eps=bn_eps)
        self.branch3x3dbl_1 = _Basic(in_channels, 64, 1, bn_eps=bn_eps)
        self.branch3x3dbl_2 = _Basic(64, 96, 3, padding=1, bn_eps=bn_eps)
        self.branch3x3dbl_3 = _Basic(96, 96, 3, padding=1, bn_eps=bn_eps)
        self.branch_pool = _Basic(in_channels, pool_features, 1, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """Grid reduction (stride 2): 3x3, double 3x3 and max-pool branches.

    Output width ``384 + 96 + in_channels``.
    """

    def __init__(self, in_channels: int, *, bn_eps: float) -> None:
        super().__init__()
        self.branch3x3 = _Basic(in_channels, 384, 3, stride=2, bn_eps=bn_eps)
        self.branch3x3dbl_1 = _Basic(in_channels, 64, 1, bn_eps=bn_eps)
        self.branch3x3dbl_2 = _Basic(64, 96, 3, padding=1, bn_eps=bn_eps)
        self.branch3x3dbl_3 = _Basic(96, 96, 3, stride=2, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, 3, stride=2)
        return torch.cat([b3, bd, bp], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (``c7`` inner width); 768 wide."""

    def __init__(self, in_channels: int, c7: int, *, bn_eps: float) -> None:
        super().__init__()
        row, col = (1, 7), (7, 1)
        pad_row, pad_col = (0, 3), (3, 0)
        self.branch1x1 = _Basic(in_channels, 192, 1, bn_eps=bn_eps)
        self.branch7x7_1 = _Basic(in_channels, c7, 1, bn_eps=bn_eps)
        self.branch7x7_2 = _Basic(c7, c7, row, padding=pad_row, bn_eps=bn_eps)
        self.branch7x7_3 = _Basic(c7, 192, col, padding=pad_col, bn_eps=bn_eps)
        self.branch7x7dbl_1 = _Basic(in_channels, c7, 1, bn_eps=bn_eps)
        self.branch7x7dbl_2 = _Basic(c7, c7, col, padding=pad_col, bn_eps=bn_eps)
        self.branch7x7dbl_3 = _Basic(c7, c7, row, padding=pad_row, bn_eps=bn_eps)
        self.branch7x7dbl_4 = _Basic(c7, c7, col, padding=pad_col, bn_eps=bn_eps)
        self.branch7x7dbl_5 = _Basic(c7, 192, row, padding=pad_row, bn_eps=bn_eps)
        self.branch_pool = _Basic(in_channels, 192, 1, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for stage in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = stage(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], dim=1)


class GoogLeNetSiamFCpp(nn.Module):
    """Pruned Inception-v3 with SiamFC++'s crop and channel reduction; returns ``[f]``.

    Args:
        crop_pad: cells removed on each side of the ``Mixed_6e`` output.
        out_channels: width after ``channel_reduce``.
        bn_eps: BatchNorm epsilon (1e-3 in the published models).
    """

    def __init__(self, *, crop_pad: int = 4, out_channels: int = 256, bn_eps: float = 1e-3):
        super().__init__()
        self.crop_pad = crop_pad
        self.Conv2d_1a_3x3 = _Basic(3, 32, 3, stride=2, bn_eps=bn_eps)
        self.Conv2d_2a_3x3 = _Basic(32, 32, 3, bn_eps=bn_eps)
        self.Conv2d_2b_3x3 = _Basic(32, 64, 3, padding=1, bn_eps=bn_eps)
        self.Conv2d_3b_1x1 = _Basic(64, 80, 1, bn_eps=bn_eps)
        self.Conv2d_4a_3x3 = _Basic(80, 192, 3, bn_eps=bn_eps)
        self.Mixed_5b = InceptionA(192, 32, bn_eps=bn_eps)
        self.Mixed_5c = InceptionA(256, 64, bn_eps=bn_eps)
        self.Mixed_5d = InceptionA(288, 64, bn_eps=bn_eps)
        self.Mixed_6a = InceptionB(288, bn_eps=bn_eps)
        self.Mixed_6b = InceptionC(768, 128, bn_eps=bn_eps)
        self.Mixed_6c = InceptionC(768, 160, bn_eps=bn_eps)
        self.Mixed_6d = InceptionC(768, 160, bn_eps=bn_eps)
        self.Mixed_6e = InceptionC(768, 192, bn_eps=bn_eps)
        self.channel_reduce = nn.Sequential(
            nn.Conv2d(768, out_channels, kernel_size=1),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
        )
        self.out_channels = [out_channels]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, H, W)`` BGR 0-255 -> ``[(N, 256, H', W')]``."""
        x = (images.flip(1) - _HALF_RANGE) / _HALF_RANGE
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        for stage in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
        ):
            x = stage(x)
        p = self.crop_pad
        if p > 0:
            x = x[:, :, p : x.shape[2] - p, p : x.shape[3] - p]
        return [self.channel_reduce(x)]


@BACKBONES.register("googlenet_siamfcpp")
def _googlenet_siamfcpp(
    *, used_layers: tuple[int, ...], width_mult: float, bn_eps: float
) -> GoogLeNetSiamFCpp:
    if width_mult != 1.0:
        raise ConfigError(f"backbone googlenet_siamfcpp has a fixed width, got {width_mult=}")
    return GoogLeNetSiamFCpp(bn_eps=bn_eps)
