"""The head registry and its builder."""

from __future__ import annotations

from torch import nn

from matcher.model_config import HeadConfig
from matcher.registry import Registry

HEADS: Registry = Registry("head")


def build_head(cfg: HeadConfig, *, num_anchors: int, stride: int) -> nn.Module:
    """Instantiate the head named by ``cfg.name``.

    Each registered factory takes the head's config section plus the values derived from
    the rest of the recipe (anchors per cell, score-map stride) and picks what it needs.

    Raises:
        UnknownComponentError: ``cfg.name`` is not registered.
        ConfigError: the settings do not fit that head.
    """
    return HEADS.get(cfg.name)(cfg, num_anchors=num_anchors, stride=stride)
