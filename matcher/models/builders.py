"""Builders: the only code that turns a recipe's ``model`` section into modules."""

from __future__ import annotations

from matcher.config import ModelConfig, num_anchors
from matcher.errors import ConfigError, UnknownComponentError
from matcher.models.backbones import build_backbone
from matcher.models.heads import build_head
from matcher.models.heads.rpn import DepthwiseRPN, DepthwiseXCorr
from matcher.models.necks import AdjustNeck
from matcher.models.siamese import SiameseNet
from matcher.models.siammask import Refine, SiamMaskNet


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
    head = build_head(model.head, num_anchors=num_anchors(model), stride=model.stride)
    return SiameseNet(backbone=backbone, neck=neck, head=head).eval()


def build_siammask_net(model: ModelConfig) -> SiamMaskNet:
    """SiamMask described by ``model`` (needs ``model.mask``), in eval mode.

    Raises:
        ConfigError: the recipe has no ``mask`` section or the neck is not one level.
    """
    if model.mask is None:
        raise ConfigError("a SiamMask recipe needs a model.mask section")
    if model.neck.name != "adjust" or len(model.neck.out_channels) != 1:
        raise ConfigError("SiamMask adjusts exactly one backbone level (model.neck)")
    bb = model.backbone
    backbone = build_backbone(
        bb.name, used_layers=bb.used_layers, width_mult=bb.width_mult, bn_eps=bb.bn_eps
    )
    if len(backbone.out_channels) != 4:
        raise ConfigError("SiamMask's backbone must return 4 levels (3 skips + the last)")
    channels = model.neck.out_channels[0]
    neck = AdjustNeck(
        (backbone.out_channels[-1],),
        model.neck.out_channels,
        center_size=model.neck.center_size,
        crop_below=model.neck.crop_below,
    )
    head = DepthwiseRPN(num_anchors=num_anchors(model), in_channels=channels, hidden=channels)
    mask_head = DepthwiseXCorr(channels, channels, model.mask.mask_size**2)
    return SiamMaskNet(
        backbone=backbone,
        neck=neck,
        head=head,
        mask_head=mask_head,
        refine_head=(
            Refine(corr_channels=channels, skip_channels=tuple(backbone.out_channels[:3]))
            if model.mask.refine
            else None
        ),
        mask_size=model.mask.mask_size,
    ).eval()
