"""The backbone registry and its builder."""

from __future__ import annotations

from torch import nn

from matcher.registry import Registry

BACKBONES: Registry = Registry("backbone")


def build_backbone(
    name: str, *, used_layers: tuple[int, ...], width_mult: float, bn_eps: float
) -> nn.Module:
    """Instantiate the backbone registered as ``name``.

    Raises:
        UnknownComponentError: ``name`` is not registered.
    """
    factory = BACKBONES.get(name)
    return factory(used_layers=used_layers, width_mult=width_mult, bn_eps=bn_eps)
