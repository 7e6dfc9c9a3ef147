"""The Siamese composition: backbone -> neck -> correlation head.

Shape shorthand / naming: ``z`` is a template (reference crop, ``exemplar_size`` square)
batch ``(K, 3, 127, 127)``, ``x`` a search batch ``(B, 3, H, W)`` (a tracker crop or a
whole scene level), both float in the channel order and value range of the recipe's
``input_format`` (raw 0-255). ``zf``/``xf`` are feature lists after the neck, ``zk``/``xk``
the head's template and search encodings.

The network holds no per-request state: :meth:`SiameseNet.encode_template` returns the
template encoding (computed once per reference and cached by the caller),
:meth:`SiameseNet.encode_search` the scene encoding, and :meth:`SiameseNet.correlate`
combines any number of each. ``forward(z, x)`` runs all three for training.
"""

from __future__ import annotations

import torch
from torch import nn


class SiameseNet(nn.Module):
    """Backbone, optional neck and head, shared by template and search.

    Args:
        backbone: returns a list of feature maps.
        head: a correlation head (``encode_template``/``encode_search``/``correlate``).
        neck: optional module mapping the backbone's list to the head's list.
    """

    def __init__(self, *, backbone: nn.Module, head: nn.Module, neck: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        if neck is not None:
            self.neck = neck
        self.head = head

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Backbone then neck: ``(N, 3, H, W)`` -> list of ``(N, C_l, H_l, W_l)``."""
        feats = self.backbone(images)
        neck = getattr(self, "neck", None)
        return neck(feats) if neck is not None else feats

    def encode_template(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Reference-only work: ``(K, 3, Z, Z)`` -> the head's template encoding."""
        return self.head.encode_template(self.features(z))

    def encode_search(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Scene-only work: ``(B, 3, H, W)`` -> the head's search encoding."""
        return self.head.encode_search(self.features(x))

    def correlate(self, zk: list[torch.Tensor], xk: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pair template and search encodings (pairing rules of ``heads.xcorr``)."""
        return self.head.correlate(zk, xk)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for paired batches (training)."""
        return self.correlate(self.encode_template(z), self.encode_search(x))
