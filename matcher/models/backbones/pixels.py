"""A parameter-free backbone of normalised pixel patches.

``pixel_patches`` describes each stride-8 cell by the mean colours of a 4x4 grid of
blocks over the 15x15 window starting at ``8 * i`` (48 values), minus the window's mean
colour and divided by their norm (softened by ``eps`` so that flat areas give near-zero
vectors). Correlating such maps is normalised template matching, so a Siamese network on
this backbone finds exact copies of its template with no training. Its geometry equals
AlexNet's and PySOT's ResNet's: a 127 crop gives 15x15 cells centred on pixels
``7 + 8 i``, a 255 crop 31x31.

It serves as a training-free matcher for tests of the search machinery and as a
template-matching baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matcher.models.backbones.registry import BACKBONES

_KERNEL = 15
_STRIDE = 8
_BLOCKS = ((0, 4), (4, 8), (8, 12), (12, 15))


def _block_mean_weights() -> torch.Tensor:
    weight = torch.zeros(3 * len(_BLOCKS) ** 2, 3, _KERNEL, _KERNEL)
    out = 0
    for channel in range(3):
        for y0, y1 in _BLOCKS:
            for x0, x1 in _BLOCKS:
                weight[out, channel, y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
                out += 1
    return weight


class PixelPatches(nn.Module):
    """Stride-8 normalised patch descriptors; returns ``[features]`` with 48 channels.

    Args:
        eps: softening of the normalisation, in pixel-value units.
    """

    def __init__(self, *, eps: float = 8.0) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", _block_mean_weights(), persistent=False)
        self.out_channels = [self.weight.shape[0]]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        feats = F.conv2d(images, self.weight, stride=_STRIDE)
        n, c, h, w = feats.shape
        per_colour = feats.reshape(n, 3, c // 3, h, w)
        feats = (per_colour - per_colour.mean(dim=2, keepdim=True)).reshape(n, c, h, w)
        norm = torch.sqrt((feats * feats).sum(dim=1, keepdim=True) + self.eps**2)
        return [feats / norm]


@BACKBONES.register("pixel_patches")
def _pixel_patches(*, used_layers: tuple[int, ...], width_mult: float, bn_eps: float):
    return PixelPatches()
