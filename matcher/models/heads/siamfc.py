"""SiamFC's head: plain cross-correlation of backbone features, times a fixed scale.

Template encoding ``[z]``, search encoding ``[x]``; output ``{"response": (N, 1, H', W')}``,
the logit of "the template is centred here".
"""

from __future__ import annotations

import torch
from torch import nn

from matcher.model_config import HeadConfig
from matcher.models.heads.registry import HEADS
from matcher.models.heads.xcorr import xcorr_naive


class SiamFCHead(nn.Module):
    """Parameter-free correlation head.

    Args:
        out_scale: factor applied to the correlation (0.001 in siamfc-pytorch).
    """

    def __init__(self, *, out_scale: float = 0.001) -> None:
        super().__init__()
        self.out_scale = out_scale

    def encode_template(self, zf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [zf[0]]

    def encode_search(self, xf: list[torch.Tensor]) -> list[torch.Tensor]:
        return [xf[0]]

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"response": xcorr_naive(xk[0], zk[0]) * self.out_scale}


@HEADS.register("siamfc")
def _siamfc(cfg: HeadConfig, *, num_anchors: int, stride: int) -> SiamFCHead:
    return SiamFCHead(out_scale=cfg.out_scale)
