"""AlexNet variants of the Siamese trackers.

* ``alexnet_legacy`` — PySOT's ``AlexNetLegacy`` and DaSiamRPN's ``featureExtract``: one
  ``features`` Sequential, conv -> BN -> max-pool -> ReLU in the first two stages, no ReLU
  after conv5. 127 -> 6x6, 255 -> 22x22, 271 -> 24x24, 287 -> 26x26.
* ``alexnet_v1`` — siamfc-pytorch's ``AlexNetV1``: stages ``conv1..conv5``, grouped
  convolutions (groups 2) in conv2/4/5, BN eps 1e-6, conv5 without BN or ReLU.

Neither pads, so the output geometry is exactly that of the originals.
"""

from __future__ import annotations

import torch
from torch import nn

from matcher.models.backbones.registry import BACKBONES

_WIDTHS = (96, 256, 384, 384, 256)


def _widths(width_mult: float) -> list[int]:
    return [int(c * width_mult) for c in _WIDTHS]


class AlexNetLegacy(nn.Module):
    """PySOT/DaSiamRPN AlexNet with BN; returns ``[conv5]``.

    Args:
        width_mult: channel multiplier (2 for DaSiamRPN's SiamRPNBIG).
        bn_eps: BatchNorm epsilon.
    """

    def __init__(self, *, width_mult: float = 1.0, bn_eps: float = 1e-5) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = _widths(width_mult)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=2),
            nn.BatchNorm2d(c1, eps=bn_eps),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.BatchNorm2d(c2, eps=bn_eps),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, kernel_size=3),
            nn.BatchNorm2d(c3, eps=bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3),
            nn.BatchNorm2d(c4, eps=bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3),
            nn.BatchNorm2d(c5, eps=bn_eps),
        )
        self.out_channels = [c5]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.features(images)]


class AlexNetV1(nn.Module):
    """siamfc-pytorch's AlexNetV1; returns ``[conv5]``.

    Args:
        width_mult: channel multiplier (must keep the grouped convolutions divisible).
        bn_eps: BatchNorm epsilon (1e-6 in siamfc-pytorch).
    """

    def __init__(self, *, width_mult: float = 1.0, bn_eps: float = 1e-6) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = _widths(width_mult)
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, c1, 11, 2),
            nn.BatchNorm2d(c1, eps=bn_eps, momentum=0.05),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(c1, c2, 5, 1, groups=2),
            nn.BatchNorm2d(c2, eps=bn_eps, momentum=0.05),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(c2, c3, 3, 1),
            nn.BatchNorm2d(c3, eps=bn_eps, momentum=0.05),
            nn.ReLU(inplace=True),
        )
        self.conv4 = nn.Sequential(
            nn.Conv2d(c3, c4, 3, 1, groups=2),
            nn.BatchNorm2d(c4, eps=bn_eps, momentum=0.05),
            nn.ReLU(inplace=True),
        )
        self.conv5 = nn.Sequential(nn.Conv2d(c4, c5, 3, 1, groups=2))
        self.out_channels = [c5]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images
        for stage in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = stage(x)
        return [x]


@BACKBONES.register("alexnet_legacy")
def _alexnet_legacy(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    return AlexNetLegacy(width_mult=width_mult, bn_eps=bn_eps)


@BACKBONES.register("alexnet_v1")
def _alexnet_v1(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    return AlexNetV1(width_mult=width_mult, bn_eps=bn_eps)
