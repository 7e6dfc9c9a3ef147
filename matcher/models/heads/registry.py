"""The head registry and its builder."""

from __future__ import annotations

from torch import nn

from matcher.registry import Registry

HEADS: Registry = Registry("head")


def build_head(
    name: str,
    *,
    in_channels: tuple[int, ...],
    hidden: int,
    weighted: bool,
    out_scale: float,
    num_anchors: int,
) -> nn.Module:
    """Instantiate the head registered as ``name``.

    Raises:
        UnknownComponentError: ``name`` is not registered.
    """
    factory = HEADS.get(name)
    return factory(
        in_channels=in_channels,
        hidden=hidden,
        weighted=weighted,
        out_scale=out_scale,
        num_anchors=num_anchors,
    )
