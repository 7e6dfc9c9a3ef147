"""PySOT's dilated ResNet-50 (``resnet_atrous``), not torchvision's.

Differences from the torchvision network, all needed to load PySOT/SiamMask weights and
keep their geometry: ``conv1`` has no padding; ``layer2``'s first block strides with an
unpadded 3x3 conv and its shortcut is a 3x3 stride-2 conv; ``layer3`` (dilation 2) and
``layer4`` (dilation 4) keep stride 8, their first block and 3x3 shortcut using half the
dilation. A 127 input gives 15x15 maps at layers 2-4, a 255 input 31x31. Unused late stages
are not built, so they have no state-dict keys.

Outputs, selected by ``used_layers``: 0 = conv1 after ReLU (stride 2), 1..4 = layer1..4.
"""

from __future__ import annotations

import torch
from torch import nn

from matcher.models.backbones.registry import BACKBONES


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided or dilated) -> 1x1 residual block, expansion 4.

    Args:
        inplanes: input channels.
        planes: bottleneck width (output is ``4 * planes``).
        stride: stride of the 3x3 conv.
        dilation: dilation of the 3x3 conv; padding is ``dilation`` when dilated,
            else ``2 - stride``.
        shortcut: projection for the residual branch, or ``None`` for identity.
        bn_eps: BatchNorm epsilon.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        shortcut: nn.Module | None = None,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        padding = dilation if dilation > 1 else 2 - stride
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv2 = nn.Conv2d(
            planes,
            planes,
            kernel_size=3,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _stage(
    inplanes: int, planes: int, blocks: int, *, stride: int, dilation: int, bn_eps: float
) -> nn.Sequential:
    out_planes = planes * Bottleneck.expansion
    shortcut = None
    first_dilation = dilation
    if stride != 1 or inplanes != out_planes:
        if stride == 1 and dilation == 1:
            conv = nn.Conv2d(inplanes, out_planes, kernel_size=1, bias=False)
        else:
            sc_dilation = dilation // 2 if dilation > 1 else 1
            conv = nn.Conv2d(
                inplanes,
                out_planes,
                kernel_size=3,
                stride=stride,
                padding=sc_dilation if dilation > 1 else 0,
                dilation=sc_dilation,
                bias=False,
            )
        shortcut = nn.Sequential(conv, nn.BatchNorm2d(out_planes, eps=bn_eps))
        if dilation > 1:
            first_dilation = dilation // 2
    layers = [
        Bottleneck(
            inplanes,
            planes,
            stride=stride,
            dilation=first_dilation,
            shortcut=shortcut,
            bn_eps=bn_eps,
        )
    ]
    layers += [
        Bottleneck(out_planes, planes, dilation=dilation, bn_eps=bn_eps) for _ in range(1, blocks)
    ]
    return nn.Sequential(*layers)


class ResNetAtrous(nn.Module):
    """Dilated ResNet returning the stages listed in ``used_layers``.

    Args:
        blocks: blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        used_layers: which of ``[conv1, layer1, layer2, layer3, layer4]`` to return.
        width_mult: channel multiplier (1 for the published models).
        bn_eps: BatchNorm epsilon.
    """

    def __init__(
        self,
        *,
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
        used_layers: tuple[int, ...] = (2, 3, 4),
        width_mult: float = 1.0,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not used_layers or min(used_layers) < 0 or max(used_layers) > 4:
            raise ValueError(f"used_layers must be within 0..4, got {used_layers}")
        self.used_layers = tuple(used_layers)
        w = [max(1, int(c * width_mult)) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(3, w[0], kernel_size=7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0], eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(w[0], w[0], blocks[0], stride=1, dilation=1, bn_eps=bn_eps)
        self.layer2 = _stage(4 * w[0], w[1], blocks[1], stride=2, dilation=1, bn_eps=bn_eps)
        widths = [w[0], 4 * w[0], 4 * w[1], 4 * w[2], 4 * w[3]]
        top = max(self.used_layers)
        if top >= 3:
            self.layer3 = _stage(4 * w[1], w[2], blocks[2], stride=1, dilation=2, bn_eps=bn_eps)
        if top >= 4:
            self.layer4 = _stage(4 * w[2], w[3], blocks[3], stride=1, dilation=4, bn_eps=bn_eps)
        self.out_channels = [widths[i] for i in self.used_layers]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x0 = self.relu(self.bn1(self.conv1(images)))
        outs = [x0]
        x = self.layer1(self.maxpool(x0))
        outs.append(x)
        top = max(self.used_layers)
        for idx in range(2, top + 1):
            x = getattr(self, f"layer{idx}")(x)
            outs.append(x)
        return [outs[i] for i in self.used_layers]


@BACKBONES.register("resnet50_atrous")
def _resnet50_atrous(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    return ResNetAtrous(
        blocks=(3, 4, 6, 3),
        used_layers=used_layers or (2, 3, 4),
        width_mult=width_mult,
        bn_eps=bn_eps,
    )


@BACKBONES.register("resnet_atrous_tiny")
def _resnet_atrous_tiny(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    """The same layout with one block per stage (tiny recipes: fast CPU training)."""
    return ResNetAtrous(
        blocks=(1, 1, 1, 1),
        used_layers=used_layers or (2, 3, 4),
        width_mult=width_mult,
        bn_eps=bn_eps,
    )
