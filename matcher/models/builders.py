"""Builders: the only code that turns a recipe's ``model`` section into modules."""

from __future__ import annotations

from matcher.config import ModelConfig, num_anchors
from matcher.errors import UnknownComponentError
from matcher.models.backbones import build_backbone
from matcher.models.heads import build_head
from matcher.models.necks import AdjustNeck
from matcher.models.siamese import SiameseNet


def build_siamese_net(model: ModelConfig) -> SiameseNet:
    """Backbone -> neck -> head network described by ``model``, in eval mode.

    Raises:
        UnknownComponentError: a component name is not registered.
        ConfigError: the neck or head sizes do not fit the backbone.
    """
    bb = model.backbone
    backbone = build_backbone(
        bb.name, used_layers=bb.used_layers, width_mult=bb.width_mult, bn_eps=bb.bn_eps
    )
    neck = None
    if model.neck.name == "adjust":
        neck = AdjustNeck(
            model.neck.in_channels or tuple(backbone.out_channels),
            model.neck.out_channels,
            center_size=model.neck.center_size,
            crop_below=model.neck.crop_below,
        )
    elif model.neck.name != "none":
        raise UnknownComponentError(f"unknown neck {model.neck.name!r}; valid names: adjust, none")
    head = build_head(
        model.head.name,
        in_channels=model.head.in_channels,
        hidden=model.head.hidden,
        weighted=model.head.weighted,
        out_scale=model.head.out_scale,
        num_anchors=num_anchors(model),
    )
    return SiameseNet(backbone=backbone, neck=neck, head=head).eval()
