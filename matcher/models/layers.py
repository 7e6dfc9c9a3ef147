"""Small building blocks shared by backbones and heads.

:class:`ConvBNReLU` is a convolution followed by an optional BatchNorm and an optional
ReLU, with its parts named ``conv`` and ``bn`` — the names video_analyst's
``conv_bn_relu`` and torchvision's Inception ``BasicConv2d`` use, so their published state
dicts map onto ours by a prefix change only. A block built without BN has no ``bn``
entry at all, as in the originals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv2d, then BatchNorm2d and ReLU where asked.

    Args:
        in_channels / out_channels: widths.
        kernel_size: square side or ``(kh, kw)``.
        stride / padding: of the convolution.
        bias: whether the convolution has a bias.
        bn: add a BatchNorm after the convolution.
        relu: end with a ReLU.
        bn_eps: BatchNorm epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        bn: bool = True,
        relu: bool = True,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            bias=bias,
        )
        if bn:
            self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``."""
        x = self.conv(x)
        bn = getattr(self, "bn", None)
        if bn is not None:
            x = bn(x)
        # in place: x is this layer's own fresh output, and neither the convolution's nor the
        # batch norm's backward reads it (a copy cost SiamFC++'s towers 4 % of a match_many)
        return F.relu(x, inplace=True) if self.relu else x
