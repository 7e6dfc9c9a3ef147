"""SiamMask: a depth-wise SiamRPN with a mask branch and the refine module.

Shape shorthand / naming: as in :mod:`matcher.models.siamese`. The backbone is PySOT's
dilated ResNet-50 up to ``layer3``, returning ``[conv1, layer1, layer2, layer3]``; only
``layer3`` goes through the adjust neck (1024 -> 256, template cropped to 7x7) and the
heads, the three earlier maps are the refine module's skip connections. For a 255 search
they are 64x125x125, 256x63x63 and 512x31x31, and the score map is 25x25.

* ``head`` — a :class:`~matcher.models.heads.rpn.DepthwiseRPN` (``cls``/``loc``).
* ``mask_head`` — a depth-wise correlation whose 256-channel correlation feature, at one
  score cell, is turned by its 1x1 head into a 63x63 mask (``mask_size ** 2`` logits).
* ``refine_head`` — SiamMask-sharp's refine module: the correlation vector at a cell is
  deconvolved to 15x15 and upsampled (nearest) to 31, 61 and 127 while adding features
  cropped around that cell from ``layer2`` (15x15), ``layer1`` (31x31) and ``conv1``
  (61x61). Output: 127x127 mask logits for the 127-pixel window of that cell.

Masks are computed only at chosen cells (:meth:`SiamMaskNet.mask_logits`), never densely,
so the box-only cost of tracking and matching is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matcher.models.heads.rpn import DepthwiseRPN, DepthwiseXCorr
from matcher.models.necks import AdjustNeck


def _conv_relu_pair(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, cout, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class Refine(nn.Module):
    """SiamMask-sharp's refine module (PySOT ``Refine``, foolwood ``refine_model``).

    ``forward`` takes the skip maps of one search image and, per requested cell, its
    correlation vector, and returns ``(N, 127, 127)`` mask logits.

    Args:
        corr_channels: width of the correlation vectors (256 in SiamMask).
        skip_channels: widths of the conv1, layer1 and layer2 skips (64, 256, 512).
    """

    def __init__(
        self, *, corr_channels: int = 256, skip_channels: tuple[int, int, int] = (64, 256, 512)
    ) -> None:
        super().__init__()
        c0, c1, c2 = skip_channels
        self.v0 = _conv_relu_pair(c0, 16, 4)
        self.v1 = _conv_relu_pair(c1, 64, 16)
        self.v2 = _conv_relu_pair(c2, 128, 32)
        self.h2 = _conv_relu_pair(32, 32, 32)
        self.h1 = _conv_relu_pair(16, 16, 16)
        self.h0 = _conv_relu_pair(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(
        self, skips: list[torch.Tensor], corr: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Mask logits at score cells.

        Args:
            skips: ``[conv1 (B, 64, 4S+25, .), layer1 (B, 256, 2S+13, .), layer2 (B, 512,
                S+6, .)]`` of the search images (``S`` the score size).
            corr: ``(N, C)`` correlation vectors at the cells.
            positions: ``(N, 3)`` int64 ``(batch index, row, col)`` of each cell.

        Returns:
            ``(N, 127, 127)`` logits.
        """
        b, y, x = positions[:, 0], positions[:, 1], positions[:, 2]
        p0 = _windows(F.pad(skips[0], [16] * 4), b, 4 * y, 4 * x, 61)
        p1 = _windows(F.pad(skips[1], [8] * 4), b, 2 * y, 2 * x, 31)
        p2 = _windows(F.pad(skips[2], [4] * 4), b, y, x, 15)
        out = self.deconv(corr[:, :, None, None])
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(31, 31)))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(61, 61)))
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(127, 127)))
        return out[:, 0]


def _windows(
    feature: torch.Tensor, b: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, size: int
) -> torch.Tensor:
    """``(N, C, size, size)`` windows of ``feature`` at ``(b, y0, x0)`` top-left corners."""
    return torch.stack(
        [
            feature[bi, :, yi : yi + size, xi : xi + size]
            for bi, yi, xi in zip(b.tolist(), y0.tolist(), x0.tolist(), strict=True)
        ]
    )


class SiamMaskNet(nn.Module):
    """SiamMask: backbone -> neck on the last level -> RPN head, mask branch, refine.

    Template encoding: ``[cls_kernel, loc_kernel, mask_kernel]``; search encoding:
    ``[cls_search, loc_search, mask_search, conv1, layer1, layer2]``. ``correlate`` returns
    the RPN's ``cls``/``loc`` only; masks come from :meth:`mask_logits`.

    Args:
        backbone: returns ``[conv1, layer1, layer2, layer3]``.
        neck: adjust neck for ``layer3``.
        head: the depth-wise RPN.
        mask_head: depth-wise correlation with a ``mask_size ** 2`` output head.
        refine_head: the refine module, or ``None`` (SiamMask base: 63x63 masks).
        mask_size: side of the mask head's output.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        neck: AdjustNeck,
        head: DepthwiseRPN,
        mask_head: DepthwiseXCorr,
        refine_head: Refine | None,
        mask_size: int = 63,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.mask_head = mask_head
        if refine_head is not None:
            self.refine_head = refine_head
        self.mask_size = mask_size

    @property
    def has_refine(self) -> bool:
        """Whether masks come from the refine module (127x127) or the mask head."""
        return hasattr(self, "refine_head")

    @property
    def mask_output_size(self) -> int:
        """Side of the masks :meth:`mask_logits` returns."""
        return 127 if self.has_refine else self.mask_size

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``[conv1, layer1, layer2, adjusted layer3]``."""
        feats = self.backbone(images)
        return [*feats[:-1], self.neck([feats[-1]])[0]]

    def encode_template(self, z: torch.Tensor) -> list[torch.Tensor]:
        zf = self.neck([self.backbone(z)[-1]])
        return [*self.head.encode_template(zf), self.mask_head.conv_kernel(zf[0])]

    def encode_search(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.features(x)
        xf = feats[-1:]
        return [*self.head.encode_search(xf), self.mask_head.conv_search(xf[0]), *feats[:-1]]

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.head.correlate(zk[:2], xk[:2])

    def forward(
        self, z: torch.Tensor, x: torch.Tensor, mask_positions: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training outputs for paired batches: ``cls``/``loc``, and ``mask_logits``
        ``(N, M, M)`` at ``mask_positions`` ``(N, 3)`` (batch index, row, col) if given."""
        zk, xk = self.encode_template(z), self.encode_search(x)
        out = self.correlate(zk, xk)
        if mask_positions is not None:
            out["mask_logits"] = self.mask_logits(zk, xk, mask_positions)
        return out

    def mask_correlation(
        self, zk: list[torch.Tensor], xk: list[torch.Tensor], positions: torch.Tensor
    ) -> torch.Tensor:
        """The mask branch's correlation vectors at chosen cells.

        Args:
            zk: template encoding (batch 1, or one per search image).
            xk: search encoding.
            positions: ``(N, 3)`` int64 ``(batch index, row, col)``.

        Returns:
            ``(N, 256)``.
        """
        kernel, search = zk[2], xk[2]
        windows = _windows(
            search, positions[:, 0], positions[:, 1], positions[:, 2], kernel.shape[-1]
        )
        kernels = (
            kernel[positions[:, 0]]
            if kernel.shape[0] > 1
            else kernel.expand(len(positions), -1, -1, -1)
        )
        return (windows * kernels).sum(dim=(2, 3))

    def mask_logits(
        self, zk: list[torch.Tensor], xk: list[torch.Tensor], positions: torch.Tensor
    ) -> torch.Tensor:
        """Mask logits for the windows of chosen cells.

        Returns:
            ``(N, M, M)`` with ``M = mask_output_size`` (127 with refine, else 63); ``N``
            may be 0.
        """
        if len(positions) == 0:
            size = self.mask_output_size
            return xk[2].new_zeros((0, size, size))
        corr = self.mask_correlation(zk, xk, positions)
        if self.has_refine:
            return self.refine_head(xk[3:6], corr, positions)
        head = self.mask_head.head
        logits = head(corr[:, :, None, None])[:, :, 0, 0]
        return logits.reshape(-1, self.mask_size, self.mask_size)
