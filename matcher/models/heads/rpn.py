"""Region-proposal heads of SiamRPN, DaSiamRPN and SiamRPN++.

Outputs are PySOT's: ``cls`` ``(N, 2A, S, S)`` with background logits in channels
``0..A-1`` and foreground in ``A..2A-1``, and ``loc`` ``(N, 4A, S, S)`` laid out as
``[dx x A, dy x A, dw x A, dh x A]``, where ``A`` is the number of anchors per cell.

* :class:`UpChannelRPN` — SiamRPN/DaSiamRPN: the template is turned into ``2A`` and ``4A``
  full kernels (up-channel correlation), plus a 1x1 ``loc_adjust``.
* :class:`DepthwiseRPN` — SiamRPN++: depth-wise correlation of adjusted features, then a
  1x1 conv head, once for ``cls`` and once for ``loc``.
* :class:`MultiRPN` — one :class:`DepthwiseRPN` per level (``rpn2, rpn3, ...``), fused by
  the mean or by learned softmax weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matcher.model_config import HeadConfig
from matcher.models.heads.registry import HEADS
from matcher.models.heads.xcorr import xcorr_depthwise, xcorr_upchannel


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=kernel, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DepthwiseXCorr(nn.Module):
    """3x3 conv-BN-ReLU on each side, depth-wise correlation, 1x1 conv head.

    Args:
        in_channels: input feature width.
        hidden: width of the correlated features.
        out_channels: output channels of the head.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, 3)
        self.conv_search = _conv_bn_relu(in_channels, hidden, 3)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def correlate(
        self, kernel: torch.Tensor, search: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(head output, correlation feature)``, both ``(N, ., H', W')``."""
        feature = xcorr_depthwise(search, kernel)
        return self.head(feature), feature

    def scores(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """The head output of :meth:`correlate` alone, ``(N, out, H', W')``.

        In eval mode with one search and several templates (match mode) it runs template
        by template, a depth-wise correlation and the 1x1 head on it, and concatenates the
        small outputs: each correlation is then an ordinary depth-wise convolution (one
        grouped convolution over all the templates has a channel multiplier, for which
        oneDNN has no fast kernel) and each head a 1x1 convolution on a map laid out as the
        search (channels-last on a prepared network), with no copy of the correlations.
        """
        if self.training or search.shape[0] != 1 or kernel.shape[0] == 1:
            return self.correlate(kernel, search)[0]
        return torch.cat(
            [self.head(xcorr_depthwise(search, kernel[i : i + 1])) for i in range(len(kernel))]
        )


class DepthwiseRPN(nn.Module):
    """Single-level depth-wise RPN.

    Template encoding ``[cls_kernel, loc_kernel]``; search encoding
    ``[cls_search, loc_search]``.

    Args:
        num_anchors: anchors per cell ``A``.
        in_channels: input width.
        hidden: correlation width.
    """

    def __init__(self, *, num_anchors: int, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, hidden, 2 * num_anchors)
        self.loc = DepthwiseXCorr(in_channels, hidden, 4 * num_anchors)

    def encode_template(self, zf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.cls.conv_kernel(zf[0]), self.loc.conv_kernel(zf[0])]

    def encode_search(self, xf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.cls.conv_search(xf[0]), self.loc.conv_search(xf[0])]

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"cls": self.cls.scores(zk[0], xk[0]), "loc": self.loc.scores(zk[1], xk[1])}


class MultiRPN(nn.Module):
    """One :class:`DepthwiseRPN` per level, fused.

    Template/search encodings are the per-level encodings concatenated
    (``[cls_2, loc_2, cls_3, loc_3, ...]``).

    Args:
        num_anchors: anchors per cell.
        in_channels: width of each level (also its correlation width, as in PySOT).
        weighted: fuse with ``softmax(cls_weight)`` / ``softmax(loc_weight)`` instead of
            the mean.
    """

    def __init__(self, *, num_anchors: int, in_channels: tuple[int, ...], weighted: bool) -> None:
        super().__init__()
        self.names = [f"rpn{i + 2}" for i in range(len(in_channels))]
        for name, channels in zip(self.names, in_channels, strict=True):
            self.add_module(
                name, DepthwiseRPN(num_anchors=num_anchors, in_channels=channels, hidden=channels)
            )
        self.weighted = weighted
        if weighted:
            self.cls_weight = nn.Parameter(torch.ones(len(in_channels)))
            self.loc_weight = nn.Parameter(torch.ones(len(in_channels)))

    def encode_template(self, zf: list[torch.Tensor]) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for name, z in zip(self.names, zf, strict=True):
            out += getattr(self, name).encode_template([z])
        return out

    def encode_search(self, xf: list[torch.Tensor]) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for name, x in zip(self.names, xf, strict=True):
            out += getattr(self, name).encode_search([x])
        return out

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        cls_levels, loc_levels = [], []
        for i, name in enumerate(self.names):
            out = getattr(self, name).correlate(zk[2 * i : 2 * i + 2], xk[2 * i : 2 * i + 2])
            cls_levels.append(out["cls"])
            loc_levels.append(out["loc"])
        if self.weighted:
            return {
                "cls": _weighted_sum(cls_levels, F.softmax(self.cls_weight, dim=0)),
                "loc": _weighted_sum(loc_levels, F.softmax(self.loc_weight, dim=0)),
            }
        return {"cls": sum(cls_levels) / len(cls_levels), "loc": sum(loc_levels) / len(loc_levels)}


def _weighted_sum(levels: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    total = levels[0] * weights[0]
    for level, weight in zip(levels[1:], weights[1:], strict=True):
        total = total + level * weight
    return total


class UpChannelRPN(nn.Module):
    """SiamRPN's up-channel head (DaSiamRPN layout, PySOT names).

    Template encoding ``[cls_kernels (K, 2A*H, h, w), loc_kernels (K, 4A*H, h, w)]``;
    search encoding ``[cls_search, loc_search]``.

    Args:
        num_anchors: anchors per cell ``A``.
        in_channels: input width.
        hidden: width ``H`` of each kernel.
    """

    def __init__(self, *, num_anchors: int, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.template_cls_conv = nn.Conv2d(in_channels, hidden * 2 * num_anchors, kernel_size=3)
        self.template_loc_conv = nn.Conv2d(in_channels, hidden * 4 * num_anchors, kernel_size=3)
        self.search_cls_conv = nn.Conv2d(in_channels, hidden, kernel_size=3)
        self.search_loc_conv = nn.Conv2d(in_channels, hidden, kernel_size=3)
        self.loc_adjust = nn.Conv2d(4 * num_anchors, 4 * num_anchors, kernel_size=1)

    def encode_template(self, zf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.template_cls_conv(zf[0]), self.template_loc_conv(zf[0])]

    def encode_search(self, xf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.search_cls_conv(xf[0]), self.search_loc_conv(xf[0])]

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        a = self.num_anchors
        cls = xcorr_upchannel(xk[0], zk[0], 2 * a)
        loc = self.loc_adjust(xcorr_upchannel(xk[1], zk[1], 4 * a))
        return {"cls": cls, "loc": loc}


@HEADS.register("depthwise_rpn")
def _depthwise_rpn(cfg: HeadConfig, *, num_anchors: int, stride: int) -> DepthwiseRPN:
    return DepthwiseRPN(num_anchors=num_anchors, in_channels=cfg.in_channels[0], hidden=cfg.hidden)


@HEADS.register("multi_rpn")
def _multi_rpn(cfg: HeadConfig, *, num_anchors: int, stride: int) -> MultiRPN:
    return MultiRPN(
        num_anchors=num_anchors, in_channels=tuple(cfg.in_channels), weighted=cfg.weighted
    )


@HEADS.register("upchannel_rpn")
def _upchannel_rpn(cfg: HeadConfig, *, num_anchors: int, stride: int) -> UpChannelRPN:
    return UpChannelRPN(num_anchors=num_anchors, in_channels=cfg.in_channels[0], hidden=cfg.hidden)
