"""PySOT's MobileNetV2 (width 1.4 in SiamRPN++), dilated after stage 3 to keep stride 8.

Stage settings ``(expansion t, channels c, blocks n, stride s, dilation d)`` follow
PySOT: strides stop at stage 3 and stages 4-7 use dilations 2, 2, 4, 4. The first block
of a stage whose dilation grows uses half of it. Every inverted residual keeps its
expansion 1x1 conv, even at ``t = 1``, and the stem is an unpadded stride-2 3x3 conv, so
the state-dict layout and the geometry (127 -> 15x15, 255 -> 31x31) match PySOT.

Outputs, selected by ``used_layers``: the outputs of ``layer0`` .. ``layer7``.
"""

from __future__ import annotations

import torch
from torch import nn

from matcher.models.backbones.registry import BACKBONES

_SETTINGS = (
    # t, c, n, s, d
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 1, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 1, 4),
    (6, 320, 1, 1, 4),
)


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depth-wise 3x3 -> project 1x1, residual when shapes allow.

    Args:
        inp / oup: input and output channels.
        stride: depth-wise conv stride.
        expand: expansion ratio.
        dilation: depth-wise conv dilation (padding = dilation when > 1, else 2 - stride).
        bn_eps: BatchNorm epsilon.
    """

    def __init__(
        self, inp: int, oup: int, *, stride: int, expand: int, dilation: int, bn_eps: float
    ) -> None:
        super().__init__()
        hidden = inp * expand
        padding = dilation if dilation > 1 else 2 - stride
        self.use_residual = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden, eps=bn_eps),
            nn.ReLU6(inplace=True),
            nn.Conv2d(
                hidden,
                hidden,
                3,
                stride,
                padding,
                dilation=dilation,
                groups=hidden,
                bias=False,
            ),
            nn.BatchNorm2d(hidden, eps=bn_eps),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup, eps=bn_eps),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """Dilated MobileNetV2 returning the stage outputs in ``used_layers``.

    Args:
        width_mult: channel multiplier (1.4 for SiamRPN++).
        used_layers: indices into ``layer0 .. layer7``.
        bn_eps: BatchNorm epsilon.
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.4,
        used_layers: tuple[int, ...] = (3, 5, 7),
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not used_layers or min(used_layers) < 0 or max(used_layers) > 7:
            raise ValueError(f"used_layers must be within 0..7, got {used_layers}")
        self.used_layers = tuple(used_layers)
        channels = int(32 * width_mult)
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, channels, 3, 2, 0, bias=False),
            nn.BatchNorm2d(channels, eps=bn_eps),
            nn.ReLU6(inplace=True),
        )
        widths = [channels]
        last_dilation = 1
        for idx, (t, c, n, s, d) in enumerate(_SETTINGS, start=1):
            out = int(c * width_mult)
            first_dilation = d if d == last_dilation else max(d // 2, 1)
            blocks = []
            for i in range(n):
                blocks.append(
                    InvertedResidual(
                        channels,
                        out,
                        stride=s if i == 0 else 1,
                        expand=t,
                        dilation=first_dilation if i == 0 else d,
                        bn_eps=bn_eps,
                    )
                )
                channels = out
            last_dilation = d
            self.add_module(f"layer{idx}", nn.Sequential(*blocks))
            widths.append(out)
        self.out_channels = [widths[i] for i in self.used_layers]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        x = images
        for idx in range(max(self.used_layers) + 1):
            x = getattr(self, f"layer{idx}")(x)
            outs.append(x)
        return [outs[i] for i in self.used_layers]


@BACKBONES.register("mobilenetv2")
def _mobilenetv2(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    return MobileNetV2(width_mult=width_mult, used_layers=used_layers or (3, 5, 7), bn_eps=bn_eps)
