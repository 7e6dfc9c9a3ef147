"""SiamFC++'s AlexNet (video_analyst ``AlexNet``, registered as ``alexnet_bn``).

Five conv-BN blocks without padding, each convolution with a bias, ReLU after all but
the fifth; max-pools (3, stride 2, ``ceil_mode``) after the first two. No groups. Block
``i`` is ``conv{i}`` with parts ``conv`` and ``bn``, the published names under
``basemodel.``. The input is raw BGR 0-255 with no normalisation.

Geometry: 127 -> 256x6x6, 303 -> 256x28x28; one more search stride of 8 pixels adds one
cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matcher.models.backbones.registry import BACKBONES
from matcher.models.layers import ConvBNReLU

_WIDTHS = (96, 256, 384, 384, 256)


class AlexNetBN(nn.Module):
    """video_analyst's AlexNet; returns ``[conv5]``.

    Args:
        width_mult: channel multiplier (1 for the published models).
        bn_eps: BatchNorm epsilon.
    """

    def __init__(self, *, width_mult: float = 1.0, bn_eps: float = 1e-5) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (int(c * width_mult) for c in _WIDTHS)
        self.conv1 = ConvBNReLU(3, c1, 11, stride=2, bn_eps=bn_eps)
        self.conv2 = ConvBNReLU(c1, c2, 5, bn_eps=bn_eps)
        self.conv3 = ConvBNReLU(c2, c3, 3, bn_eps=bn_eps)
        self.conv4 = ConvBNReLU(c3, c4, 3, bn_eps=bn_eps)
        self.conv5 = ConvBNReLU(c4, c5, 3, relu=False, bn_eps=bn_eps)
        self.out_channels = [c5]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, H, W)`` BGR 0-255 -> ``[(N, 256, H', W')]``."""
        x = F.max_pool2d(self.conv1(images), 3, stride=2, ceil_mode=True)
        x = F.max_pool2d(self.conv2(x), 3, stride=2, ceil_mode=True)
        return [self.conv5(self.conv4(self.conv3(x)))]


@BACKBONES.register("alexnet_bn")
def _alexnet_bn(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float) -> AlexNetBN:
    return AlexNetBN(width_mult=width_mult, bn_eps=bn_eps)
