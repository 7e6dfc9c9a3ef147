"""SiamMask's mask targets: the gt mask inside a score cell's exemplar-sized window.

The mask predicted at score cell ``(row, col)`` covers the square window of side
``exemplar_size`` whose top-left corner is ``((col - base_size / 2) * stride, (row -
base_size / 2) * stride)`` in search-crop pixels
(:func:`matcher.inference.siammask_masks.cell_window` with the crop as the image), the same
window SiamMask unfolds from the gt mask. The target is
that window of the gt mask, zero outside the crop, resampled to the ``M x M`` grid of the
network's mask logits: output pixel ``i`` samples search pixel ``x0 + (i + 0.5) * side / M -
0.5`` bilinearly, averaging ``ceil(side / M)`` squared samples per output pixel
(``torchvision.ops.roi_align`` with ``aligned=True``). When ``M`` equals the window side (the
refine module's 127) and the window starts on a whole pixel, the target is an exact crop; the
mask head's 63 gets block averages, so its targets are soft (values in ``[0, 1]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from matcher.errors import ConfigError
from matcher.inference.siammask_masks import cell_window
from trainers.targets.geometry import TargetGeometry


def crop_mask_windows(
    masks: torch.Tensor, positions: torch.Tensor, *, geometry: TargetGeometry
) -> torch.Tensor:
    """Mask targets of chosen score cells.

    Args:
        masks: ``(B, X, X)`` gt masks (uint8 0/1, bool or float), search-crop pixels.
        positions: ``(N, 3)`` int64 ``(batch index, row, col)``.
        geometry: must have ``mask_size``.

    Returns:
        ``(N, M, M)`` float32 in ``[0, 1]``, ``M = geometry.mask_size``.

    Raises:
        ConfigError: the geometry has no mask size.
    """
    if geometry.mask_size is None:
        raise ConfigError("mask targets need a geometry with mask_size")
    size = geometry.mask_size
    if positions.shape[0] == 0:
        return torch.zeros((0, size, size), dtype=torch.float32, device=masks.device)
    x0, y0, side = cell_window(
        (0.0, 0.0, float(geometry.search_size)),
        positions[:, 1].float(),
        positions[:, 2].float(),
        instance_size=geometry.search_size,
        exemplar_size=geometry.exemplar_size,
        stride=geometry.stride,
        base_size=geometry.base_size,
    )
    # One zero pixel around the crop makes roi_align's border handling a zero extension.
    padded = F.pad(masks[:, None].float(), (1, 1, 1, 1))
    rois = torch.stack(
        [positions[:, 0].float(), x0 + 1, y0 + 1, x0 + 1 + side, y0 + 1 + side], dim=1
    )
    out = roi_align(
        padded,
        rois,
        output_size=size,
        spatial_scale=1.0,
        sampling_ratio=max(1, math.ceil(side / size)),
        aligned=True,
    )
    return out[:, 0]
