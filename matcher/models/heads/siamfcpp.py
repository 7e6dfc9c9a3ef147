"""SiamFC++'s head (video_analyst ``SiamTrack`` adjust convs + ``DenseboxHead``).

Template and search features each pass through two adjust blocks (3x3 conv + BN, no
ReLU, no padding): ``c_z_k``/``r_z_k`` on the template, ``c_x``/``r_x`` on the search.
The classification pair and the regression pair are correlated depth-wise; each
correlation then runs through a tower of ``num_convs`` 3x3 convs with ReLU (BN where
``conv_bn`` says), ``cls_p5_conv{i}`` and ``bbox_p5_conv{i}``. From the cls tower, 1x1
conv + BN layers give the classification logit (``cls_score_p5``) and the centre-ness
logit (``ctr_score_p5``); from the bbox tower ``bbox_offsets_p5`` gives four values ``o``
that become distances ``exp(si * o + bi) * stride`` from the cell's centre to the box's
left, top, right and bottom edges, in input pixels. ``si`` and ``bi`` are learned scalars.

Module names equal video_analyst's (its ``c_z_k.*`` ... become ``head.c_z_k.*``; its
``head.*`` stays ``head.*``).

Template encoding ``[c_z_k(zf), r_z_k(zf)]``; search encoding ``[c_x(xf), r_x(xf)]``.
Outputs of :meth:`SiamFCppHead.correlate`, for ``N`` pairs (pairing as in
:mod:`matcher.models.heads.xcorr`) and an ``S x S`` map:

* ``cls``: ``(N, 1, S, S)`` logits;
* ``ctr``: ``(N, 1, S, S)`` centre-ness logits;
* ``offsets``: ``(N, 4, S, S)`` float32 ``(l, t, r, b)`` distances in pixels.

The map shrinks by 2 cells per adjust conv pair and per tower conv: with template and
search features of sides ``fz`` and ``fx``, ``S = fx - fz + 1 - 2 * num_convs``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from matcher.errors import ConfigError
from matcher.model_config import HeadConfig
from matcher.models.heads.registry import HEADS
from matcher.models.heads.xcorr import xcorr_depthwise
from matcher.models.layers import ConvBNReLU


class SiamFCppHead(nn.Module):
    """Adjust convs, depth-wise correlation and the Densebox towers.

    Args:
        in_channels: width of the backbone features.
        hidden: width of the adjusted features and the towers (video_analyst
            ``head_width``).
        num_convs: 3x3 convs per tower (``num_conv3x3``).
        conv_bn: per tower conv, whether it has a BatchNorm (``head_conv_bn``); empty
            means none has.
        stride: total stride of the score map, which scales the offsets.

    Raises:
        ConfigError: ``conv_bn`` is neither empty nor one flag per conv.
    """

    def __init__(
        self,
        *,
        in_channels: int = 256,
        hidden: int = 256,
        num_convs: int = 3,
        conv_bn: tuple[bool, ...] = (False, False, True),
        stride: int = 8,
    ) -> None:
        super().__init__()
        if not conv_bn:
            conv_bn = (False,) * num_convs
        if len(conv_bn) != num_convs:
            raise ConfigError(
                f"SiamFC++ head: conv_bn has {len(conv_bn)} flags for {num_convs} tower convs"
            )
        self.stride = stride
        self.num_convs = num_convs
        self.c_z_k = ConvBNReLU(in_channels, hidden, 3, relu=False)
        self.r_z_k = ConvBNReLU(in_channels, hidden, 3, relu=False)
        self.c_x = ConvBNReLU(in_channels, hidden, 3, relu=False)
        self.r_x = ConvBNReLU(in_channels, hidden, 3, relu=False)
        for i, has_bn in enumerate(conv_bn, start=1):
            self.add_module(f"cls_p5_conv{i}", ConvBNReLU(hidden, hidden, 3, bn=has_bn))
            self.add_module(f"bbox_p5_conv{i}", ConvBNReLU(hidden, hidden, 3, bn=has_bn))
        self.cls_score_p5 = ConvBNReLU(hidden, 1, 1, relu=False)
        self.ctr_score_p5 = ConvBNReLU(hidden, 1, 1, relu=False)
        self.bbox_offsets_p5 = ConvBNReLU(hidden, 4, 1, relu=False)
        self.si = nn.Parameter(torch.tensor(1.0))
        self.bi = nn.Parameter(torch.tensor(0.0))
        self.reset_parameters()

    def tower(self, name: str) -> list[ConvBNReLU]:
        """The ``"cls"`` or ``"bbox"`` tower's convs, in order."""
        return [getattr(self, f"{name}_p5_conv{i}") for i in range(1, self.num_convs + 1)]

    def reset_parameters(self) -> None:
        """video_analyst's initialisation: adjust convs N(0, 0.01); tower and output convs
        N(0, 1e-4) with PyTorch's uniform biases, except the classifier's bias, which
        sets a 1 % foreground prior."""
        for adjust in (self.c_z_k, self.r_z_k, self.c_x, self.r_x):
            nn.init.normal_(adjust.conv.weight, std=0.01)
        outputs = (self.cls_score_p5, self.ctr_score_p5, self.bbox_offsets_p5)
        for block in [*self.tower("cls"), *self.tower("bbox"), *outputs]:
            conv = block.conv
            nn.init.normal_(conv.weight, std=1e-4)
            fan_in = conv.weight[0].numel()
            nn.init.uniform_(conv.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.constant_(self.cls_score_p5.conv.bias, -math.log(99.0))

    def encode_template(self, zf: list[torch.Tensor]) -> list[torch.Tensor]:
        """``[(K, C, fz, fz)]`` -> ``[cls, reg]`` kernels, each ``(K, hidden, fz-2, fz-2)``."""
        return [self.c_z_k(zf[0]), self.r_z_k(zf[0])]

    def encode_search(self, xf: list[torch.Tensor]) -> list[torch.Tensor]:
        """``[(B, C, H, W)]`` -> ``[cls search, reg search]``, each ``(B, hidden, H-2, W-2)``."""
        return [self.c_x(xf[0]), self.r_x(xf[0])]

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Correlate and run the towers; see the module docstring for the outputs."""
        cls = xcorr_depthwise(xk[0], zk[0])
        bbox = xcorr_depthwise(xk[1], zk[1])
        for conv in self.tower("cls"):
            cls = conv(cls)
        for conv in self.tower("bbox"):
            bbox = conv(bbox)
        offsets = torch.exp(self.si * self.bbox_offsets_p5(bbox) + self.bi) * self.stride
        return {"cls": self.cls_score_p5(cls), "ctr": self.ctr_score_p5(cls), "offsets": offsets}


@HEADS.register("siamfcpp")
def _siamfcpp(cfg: HeadConfig, *, num_anchors: int, stride: int) -> SiamFCppHead:
    return SiamFCppHead(
        in_channels=cfg.in_channels[0],
        hidden=cfg.hidden,
        num_convs=cfg.num_convs,
        conv_bn=tuple(cfg.conv_bn),
        stride=stride,
    )
