"""Backbones: image batch -> list of feature maps.

Every backbone is an ``nn.Module`` whose ``forward(images)`` takes ``(N, 3, H, W)`` float
images in the value range and channel order its recipe declares, and returns the list of
feature maps selected by ``used_layers``; ``out_channels`` lists their widths. They are
registered by name in :data:`BACKBONES` and built only through :func:`build_backbone`.
"""

from __future__ import annotations

from matcher.models.backbones import (  # noqa: F401
    alexnet,
    alexnet_bn,
    googlenet,
    mobilenetv2,
    pixels,
    resnet_atrous,
)
from matcher.models.backbones.registry import BACKBONES, build_backbone

__all__ = ["BACKBONES", "build_backbone"]
