"""Adjust layers between a backbone and a correlation head.

:class:`AdjustLayer` is a 1x1 conv (no bias) + BN; template maps (narrower than
``crop_below``) are then cropped to their central ``center_size`` cells, which is how PySOT
and SiamMask turn a 15x15 template map into 7x7. :class:`AdjustNeck` applies one per level,
named ``downsample`` for a single level and ``downsample2, 3, 4 ...`` for several, as in
PySOT's ``AdjustAllLayer``, so published state dicts load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def center_crop(feature: torch.Tensor, size: int) -> torch.Tensor:
    """Central ``size x size`` cells of a ``(N, C, H, W)`` map (``l = (W - size) // 2``)."""
    left = (feature.shape[-1] - size) // 2
    top = (feature.shape[-2] - size) // 2
    return feature[:, :, top : top + size, left : left + size]


class AdjustLayer(nn.Module):
    """1x1 conv + BN, then the template centre crop.

    Args:
        in_channels / out_channels: widths.
        center_size: side of the template crop.
        crop_below: maps whose width is below this are cropped.
        bn_eps: BatchNorm epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        center_size: int = 7,
        crop_below: int = 20,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
        )
        self.center_size = center_size
        self.crop_below = crop_below

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if x.shape[-1] < self.crop_below:
            x = center_crop(x, self.center_size)
        return x


class AdjustNeck(nn.Module):
    """One :class:`AdjustLayer` per feature level.

    Args:
        in_channels / out_channels: one entry per level.
        center_size / crop_below / bn_eps: passed to every layer.
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        out_channels: tuple[int, ...],
        *,
        center_size: int = 7,
        crop_below: int = 20,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels) or not in_channels:
            raise ValueError(
                f"neck needs one out channel per input level: {in_channels} -> {out_channels}"
            )
        self.names = (
            ["downsample"]
            if len(in_channels) == 1
            else [f"downsample{i + 2}" for i in range(len(in_channels))]
        )
        for name, cin, cout in zip(self.names, in_channels, out_channels, strict=True):
            self.add_module(
                name,
                AdjustLayer(
                    cin, cout, center_size=center_size, crop_below=crop_below, bn_eps=bn_eps
                ),
            )
        self.out_channels = list(out_channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != len(self.names):
            raise ValueError(f"neck expects {len(self.names)} levels, got {len(features)}")
        return [getattr(self, n)(f) for n, f in zip(self.names, features, strict=True)]
