"""L1 matching of Siamese Mask R-CNN: reference vectors against scene feature maps.

At every pyramid level the reference's feature map is average-pooled to one vector
(:func:`pool_reference`); k shots are averaged (:func:`average_shots`, equal to pooling
their averaged maps, as the original does, since pooling is linear). The scene map and
its element-wise L1 distance to the broadcast vector are concatenated
(:func:`l1_match`) and mixed back to a working width by a 1x1 convolution per level
(:class:`L1Fusion`), whose output feeds the class-agnostic RPN and RoI heads.

Shape shorthand / naming: ``B`` scenes, ``R`` references, ``K`` shots, ``C`` pyramid
width, ``F`` fused width; a *level* is one pyramid map, keyed by name (``"0"``..``"3"``,
``"pool"``) as torchvision's FPN returns them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn


def pool_reference(features: torch.Tensor) -> torch.Tensor:
    """Global average pool of reference feature maps.

    Args:
        features: ``(N, C, H, W)`` float.

    Returns:
        ``(N, C)`` float, the mean over the spatial positions.
    """
    return features.mean(dim=(2, 3))


def average_shots(vectors: torch.Tensor, shots: int) -> torch.Tensor:
    """Mean of the ``shots`` consecutive vectors of each reference.

    Args:
        vectors: ``(R * K, C)``, the ``K`` shots of reference ``r`` at rows
            ``r * K .. r * K + K - 1``.
        shots: ``K >= 1``.

    Returns:
        ``(R, C)``.
    """
    if shots < 1 or vectors.shape[0] % shots:
        raise ValueError(f"{vectors.shape[0]} vectors do not split into groups of {shots} shots")
    return vectors.reshape(-1, shots, vectors.shape[1]).mean(dim=1)


def l1_match(scene: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``[scene, |scene - reference|]`` with the reference vector broadcast over positions.

    Args:
        scene: ``(B, C, H, W)`` scene features; ``B`` equals ``R`` (pairs) or is 1 (one
            scene against every reference).
        reference: ``(R, C)`` reference vectors.

    Returns:
        ``(max(B, R), 2C, H, W)``: the scene features, then the absolute differences.

    Raises:
        ValueError: channel counts differ or the batches do not pair.
    """
    if scene.shape[1] != reference.shape[1]:
        raise ValueError(f"scene has {scene.shape[1]} channels, reference {reference.shape[1]}")
    if scene.shape[0] not in (1, reference.shape[0]):
        raise ValueError(f"{scene.shape[0]} scenes do not pair with {reference.shape[0]} refs")
    distance = (scene - reference[:, :, None, None]).abs()
    return torch.cat([scene.expand_as(distance), distance], dim=1)


class L1Fusion(nn.Module):
    """One 1x1 convolution per level mixing :func:`l1_match`'s ``2C`` channels to ``F``.

    No activation follows, as in the original (``fpn_distance_P*`` layers).

    Args:
        levels: names of the pyramid levels, in order.
        in_channels: pyramid width ``C``.
        out_channels: fused width ``F``.
    """

    def __init__(self, levels: Sequence[str], in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.out_channels = out_channels
        self.mix = nn.ModuleDict(
            {name: nn.Conv2d(2 * in_channels, out_channels, kernel_size=1) for name in levels}
        )
        for conv in self.mix.values():
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(
        self, scene: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]
    ) -> OrderedDict[str, torch.Tensor]:
        """Fuse every level.

        Args:
            scene: level name -> ``(B, C, H_l, W_l)``.
            reference: level name -> ``(R, C)``; ``B`` is ``R`` or 1.

        Returns:
            level name -> ``(max(B, R), F, H_l, W_l)``, in :attr:`levels` order.
        """
        return OrderedDict(
            (name, self.mix[name](l1_match(scene[name], reference[name]))) for name in self.levels
        )
